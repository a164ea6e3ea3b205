"""The tick: sample checks, windows, batched scoring with a time limit, missing data, the
alert stage, and training detector models beside the hot path (`engine.tick.Engine`).
"""


def __getattr__(name: str):
    # the names of the module alertd.engine of alertd 0.1, which became this package
    import importlib
    import importlib.util

    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not loaded yet
        return importlib.import_module(f"{__name__}.{name}")
    try:
        return getattr(importlib.import_module(f"{__name__}.tick"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
