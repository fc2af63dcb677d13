"""One module of exercises per notebook; importing this package registers them all."""

from . import grpc_service, rest, start  # noqa: F401
