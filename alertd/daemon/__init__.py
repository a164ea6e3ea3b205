"""alertd.daemon."""
