"""The tick: sample checks, windows, batched scoring with a time limit, missing data, the
alert stage, and training detector models beside the hot path (`engine.tick.Engine`).
"""


def __getattr__(name: str):
    # the names of the module alertd.engine of alertd 0.1, which became this package
    import importlib

    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(importlib.import_module(f"{__name__}.tick"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
