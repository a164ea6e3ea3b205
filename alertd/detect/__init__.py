"""alertd.detect."""
