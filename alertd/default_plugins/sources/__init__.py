"""alertd.default_plugins.sources."""
