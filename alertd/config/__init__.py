"""alertd.config."""
