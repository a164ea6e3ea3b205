"""alertd.delivery."""
