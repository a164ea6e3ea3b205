"""Built-in sources: plugin modules listed in `alertd.plugins.DEFAULT_PLUGINS`."""
