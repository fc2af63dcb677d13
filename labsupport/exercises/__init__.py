"""One module of exercises per notebook; importing this package registers them all."""

from . import graphql_api, long_polling, rest, sse, start  # noqa: F401
