"""The config: YAML (safe, with line numbers) -> validated, frozen objects.

`load` (the whole file, every problem at once), `schema` (typed params: durations, secrets,
nearest-key suggestions), `types` (the frozen result), `http`, `routing` (route tree,
receivers, inhibit rules), `time_intervals`, `shards`, `yamlsrc` (the line-aware loader).
"""


def __getattr__(name: str):
    # the names of the module alertd.config of alertd 0.1, which became this package
    import importlib
    import importlib.util

    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not loaded yet
        return importlib.import_module(f"{__name__}.{name}")
    try:
        return getattr(importlib.import_module(f"{__name__}.load"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
