"""Built-in plugins: ordinary plugin modules, registered like third-party ones.

They live in `sources/`, `detectors/` and `notifiers/` and are listed in
`alertd.plugins.DEFAULT_PLUGINS`; they use only the plugin API and the kits (`alertd`,
`alertd.base`, `alertd.model`, `alertd.sources`, `alertd.detect`, `alertd.render`,
`alertd.config.schema`), never the daemon's machinery, and never each other.
"""
