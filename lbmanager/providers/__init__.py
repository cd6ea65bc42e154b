"""One module per cloud API behind a small Protocol; error classes; rate limits."""
