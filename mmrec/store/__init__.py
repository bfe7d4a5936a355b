"""The take on disk: frame memory, the Matroska writer, the writer pool, the take format."""
