"""alertd.cli."""
