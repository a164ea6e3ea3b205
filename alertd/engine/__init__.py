"""alertd.engine."""
