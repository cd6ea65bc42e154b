"""The writers of the tree: leased keys, `register`, the Docker agent and its labels."""
