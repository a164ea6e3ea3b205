"""alertd.routing."""
