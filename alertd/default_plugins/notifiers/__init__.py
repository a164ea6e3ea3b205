"""alertd.default_plugins.notifiers."""
