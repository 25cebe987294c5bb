"""The GMV Max options document of a binding: stored bytes, strong ETag, refresh on demand."""
