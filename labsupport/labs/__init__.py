"""One package per lab: its server, its handle, its exercises and its pages."""
