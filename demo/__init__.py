"""`make demo`: the responder at work on a small world in an in-memory AWS (see demo/__main__.py)."""
