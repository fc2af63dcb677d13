"""The WebSockets lab (notebooks/04-websockets.ipynb): a chat server on ``websockets``,
and the document's own Flask-SocketIO server, run (``socketio_server``)."""
