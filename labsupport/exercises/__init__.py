"""One module of exercises per notebook; importing this package registers them all."""

from . import chat, rest, start  # noqa: F401
