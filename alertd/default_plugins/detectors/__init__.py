"""alertd.default_plugins.detectors."""
