"""The operator surface: the status server (health, readiness, status JSON, metrics, the page)."""
