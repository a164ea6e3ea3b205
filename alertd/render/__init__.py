"""What a notice says: Jinja2 templates in a sandbox (`renderer`), the view they see
(`view`), payload formats (`payloads`: alertd JSON, Alertmanager webhook and API), and the
default templates in `templates/`.
"""


def __getattr__(name: str):
    # the names of the module alertd.render of alertd 0.1, which became this package
    import importlib
    import importlib.util

    if name.startswith("__"):
        raise AttributeError(name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule not loaded yet
        return importlib.import_module(f"{__name__}.{name}")
    try:
        return getattr(importlib.import_module(f"{__name__}.renderer"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
