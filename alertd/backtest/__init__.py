"""Backtests: the daemon's own engine and trainer replayed over recorded or labelled data.

`replay` (one series through one rule, on a simulated clock), `rules` (which rule a backtest
runs), `nab` (the NAB corpus layout and scoring rules), `nab_run` (a whole corpus, in
parallel), `plot` (a PNG of a replay), `sim_week` (the shop simulator's labelled week
through every rule of a config) and `incidents_eval` (rules judged by incidents: found,
time to fire, false pages, precision and recall).
"""


def __getattr__(name: str):
    # the names of the module alertd.backtest of alertd 0.1, which became this package
    import importlib
    import importlib.util

    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not loaded yet
        return importlib.import_module(f"{__name__}.{name}")
    try:
        return getattr(importlib.import_module(f"{__name__}.replay"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
