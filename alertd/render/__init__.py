"""alertd.render."""
