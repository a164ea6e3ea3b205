"""alertd.incidents."""
