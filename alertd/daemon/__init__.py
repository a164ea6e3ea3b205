"""The running daemon: `core.Daemon` with its polls, reload, health, clock-step guard and
back-fill, the process `lifecycle` around it (signals, sd_notify, watchdog), the scheduler.
"""


def __getattr__(name: str):
    # the names of the module alertd.daemon of alertd 0.1, which became this package
    import importlib
    import importlib.util

    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not loaded yet
        return importlib.import_module(f"{__name__}.{name}")
    try:
        return getattr(importlib.import_module(f"{__name__}.core"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
