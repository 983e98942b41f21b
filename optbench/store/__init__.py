"""The results store: run records on disk, read and written safely, and as a flat table."""
