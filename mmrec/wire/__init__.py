"""Pure, sans-IO readers of what cameras send: HTTP/1 response heads, multipart parts, JPEG markers.

Nothing here imports asyncio or touches a socket; every parser is fed bytes and hands back
values, so it is tested byte by byte and reused under any I/O layer."""
