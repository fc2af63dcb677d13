"""One module of exercises per notebook; importing this package registers them all."""

from ..labs.queues import exercises as queues  # noqa: F401,E402
from . import chat, graphql_api, grpc_service, long_polling, rest, sse, start  # noqa: F401
