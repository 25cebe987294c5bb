"""TikTok bindings: list, OAuth authorize and callback, rename, revoke, delete; provider apps."""
