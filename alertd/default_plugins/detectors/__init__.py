"""Built-in detectors: plugin modules listed in `alertd.plugins.DEFAULT_PLUGINS`."""
