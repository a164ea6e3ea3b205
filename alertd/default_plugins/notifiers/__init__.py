"""Built-in notifiers: plugin modules listed in `alertd.plugins.DEFAULT_PLUGINS`."""
