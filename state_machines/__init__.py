"""The containment state machine (ASL in files) and the local runtime that executes the very same files."""
