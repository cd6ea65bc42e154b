"""Member keys: layouts, segments, upstream values (pure)."""
