"""alertd.sources."""
