"""One package per lab: its server, its handle, its exercises, its pages."""
