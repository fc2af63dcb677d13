"""The WebSockets lab (notebooks/04-websockets.ipynb): a chat server on ``websockets``."""
