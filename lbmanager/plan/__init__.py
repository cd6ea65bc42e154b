"""Pure planning: (desired, current) -> changes, per kind."""
