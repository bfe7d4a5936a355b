"""mmrec: record, benchmark and review many MJPEG camera nodes at once."""

__version__ = "0.1.0"
