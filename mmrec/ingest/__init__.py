"""Where sockets meet the parsers: one task per camera stream, and the ``/status`` clock probe."""
