"""Pure, sans-IO readers of what cameras send: HTTP/1 response heads, multipart parts, JPEG markers.

Nothing here imports asyncio or touches a socket; every parser is fed bytes and hands back
values, so it is tested byte by byte and reused under any I/O layer.

- ``http1``: the request, response heads (resumable), chunked bodies.
- ``multipart``: :class:`~mmrec.wire.multipart.MultipartParser`, the stream parser the
  ingest feeds; it is built from ``receive`` (the receive buffer, and payloads received
  straight into their own memory), ``parts`` (the multipart state machine, one handler
  per state), ``boundary`` (delimiter lines), ``rawjpeg`` (back-to-back JPEGs),
  ``headers`` (header lines, shared with ``http1``) and ``content_type``.
- ``jpeg``: the one JPEG marker walker, what a complete JPEG is, what a header says.
"""
