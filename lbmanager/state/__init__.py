"""What is: the key tree at a revision and the record of managed targets."""
