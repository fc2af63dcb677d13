"""One module of exercises per notebook; importing this package registers them all."""

from . import rest, start  # noqa: F401
