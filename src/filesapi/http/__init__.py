"""The HTTP layer: the wire (both dialects, headers, multipart, the error envelope), no storage."""
