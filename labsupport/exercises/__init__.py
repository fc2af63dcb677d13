"""One module of exercises per notebook; importing this package registers them all."""

from ..labs.choosing import exercises as choosing  # noqa: F401
from ..labs.interview import exercises as interview  # noqa: F401  (until the layout refactor)
from ..labs.queues import exercises as queues  # noqa: F401
from . import chat, graphql_api, grpc_service, long_polling, rest, sse, start  # noqa: F401
