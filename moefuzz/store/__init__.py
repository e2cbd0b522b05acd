"""The corpus on disk and replaying it."""
