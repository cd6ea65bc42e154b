"""Process plumbing shared by every command: lifecycle, retries, logging."""
