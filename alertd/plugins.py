"""The plugin manager: built-ins, entry points of group `alertd`, and `plugin_dirs` files.

All three origins go through the same path: a module is registered with pluggy, then each
of its `register_*` hookimpls is called with a `register` callable that records the class
under its `type_name`, together with where it came from. A duplicate type name or a module
that fails to import raises `PluginError` with one clear sentence.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from . import hookspecs
from .base import Detector, Notifier, Source

# The built-in plugins, registered through the same path as third-party ones (llm's and
# datasette's DEFAULT_PLUGINS): a module here is imported only when a registry is loaded.
DEFAULT_PLUGINS = tuple(f"alertd.default_plugins.{kind}.{name}" for kind, names in (
    ("sources", ("command", "csv_replay", "http_json", "logfile", "prometheus", "push", "shop_sim", "sql")),
    ("detectors", ("absent", "combine", "forecast", "pyod_detector", "rate", "seasonal", "surprise", "threshold", "zscore")),
    ("notifiers", ("alertmanager", "command", "console", "email_smtp", "pagerduty", "slack", "webhook")),
) for name in names)

KINDS = {"source": ("register_sources", Source),
         "detector": ("register_detectors", Detector),
         "notifier": ("register_notifiers", Notifier)}


class PluginError(Exception):
    """A plugin could not be loaded or registered; `details` holds the traceback if any."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin class: its type name, kind, origin and the module it came from."""

    name: str
    kind: str
    origin: str
    module: str
    cls: type = field(compare=False, repr=False)

    def as_dict(self) -> dict:
        doc = (self.cls.__doc__ or "").strip().splitlines()
        return {"name": self.name, "kind": self.kind, "origin": self.origin,
                "module": self.module, "summary": doc[0] if doc else ""}


class Registry:
    """Type name -> plugin class maps for sources, detectors and notifiers."""

    def __init__(self):
        self.pm = pluggy.PluginManager("alertd")
        self.pm.add_hookspecs(hookspecs)
        self.by_kind: dict[str, dict[str, PluginInfo]] = {k: {} for k in KINDS}
        self._origins: dict[str, str] = {}

    # -- loading -------------------------------------------------------------------------
    def add_module(self, module, origin: str, name: str | None = None) -> None:
        """Register a plugin module (or object) and collect the classes it registers."""
        name = name or getattr(module, "__name__", repr(module))
        if self.pm.is_registered(module):
            return
        try:
            self.pm.register(module, name=name)
        except ValueError as exc:
            raise PluginError(f'error loading plugin "{name}": {exc}') from None
        self._origins[name] = origin
        for kind, (hook_name, base) in KINDS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin_name == name:
                    self._call(impl, kind, base, origin, name)

    def _call(self, impl, kind, base, origin, plugin_name):
        def register(cls):
            self._register_class(cls, kind, base, origin, plugin_name)

        kwargs = {"register": register} if "register" in impl.argnames else {}
        try:
            impl.function(**kwargs)
        except PluginError:
            raise
        except Exception as exc:  # a plugin's own bug: report it as a load error
            raise PluginError(f'error loading plugin "{plugin_name}": {type(exc).__name__}: {exc}',
                              traceback.format_exc()) from None

    def _register_class(self, cls, kind, base, origin, plugin_name):
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f'error loading plugin "{plugin_name}": {cls!r} is not a '
                              f"subclass of alertd.base.{base.__name__}")
        type_name = getattr(cls, "type_name", "")
        if not type_name:
            raise PluginError(f'error loading plugin "{plugin_name}": {cls.__name__} has no '
                              "type_name; set the class attribute type_name")
        existing = self.by_kind[kind].get(type_name)
        if existing is not None:
            raise PluginError(f'duplicate {kind} type "{type_name}": registered by '
                              f"{existing.origin} ({existing.module}) and {origin} ({plugin_name}); "
                              "rename one of them or remove a plugin")
        self.by_kind[kind][type_name] = PluginInfo(type_name, kind, origin, plugin_name, cls)

    def load_builtins(self) -> None:
        """Register every module of `DEFAULT_PLUGINS`, as any other plugin."""
        for modname in DEFAULT_PLUGINS:
            self.add_module(_import(modname, modname.rsplit(".", 1)[1]), "built-in", modname)

    def load_entrypoints(self, group: str = "alertd") -> None:
        """Register plugins that installed distributions declare under entry-point group `alertd`."""
        for ep in importlib.metadata.entry_points(group=group):
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(f'error loading plugin "{ep.name}": {type(exc).__name__}: {exc}',
                                  traceback.format_exc()) from None
            dist = ep.dist.name if ep.dist else "unknown distribution"
            version = f" {ep.dist.version}" if ep.dist else ""
            self.add_module(module, f"distribution {dist}{version}", ep.name)

    def load_dir(self, directory: str | Path) -> None:
        """Register every `*.py` file (not starting with `_`) of a site plugin directory."""
        directory = Path(directory)
        try:
            if not directory.is_dir():
                return
        except OSError:  # a name the system refuses (too long): no such directory either
            return
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = site_module(path)
            except Exception as exc:
                raise PluginError(f'error loading plugin "{path.stem}": {type(exc).__name__}: {exc} '
                                  f"(in {path})", traceback.format_exc()) from None
            self.add_module(module, str(path), path.stem)

    # -- lookup ----------------------------------------------------------------------------
    def get(self, kind: str, type_name: str):
        info = self.by_kind[kind].get(type_name)
        return info.cls if info else None

    def names(self, kind: str) -> list[str]:
        return sorted(self.by_kind[kind])

    def all(self) -> list[PluginInfo]:
        return [info for kind in KINDS for _, info in sorted(self.by_kind[kind].items())]


SITE_PACKAGE = "alertd_site_plugins"


def site_module(path: Path):
    """Import the plugin file `path` as module `alertd_site_plugins.<stem>` (under a package
    of that name, so that its classes pickle by name: fitted models, and fits sent to the
    worker process, which imports the file again by this function)."""
    if SITE_PACKAGE not in sys.modules:
        package = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(SITE_PACKAGE, None,
                                                                                 is_package=True))
        package.__path__ = []
        sys.modules[SITE_PACKAGE] = package
    modname = f"{SITE_PACKAGE}.{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _import(modname: str, short: str):
    try:
        return importlib.import_module(modname)
    except Exception as exc:
        raise PluginError(f'error loading plugin "{short}": {type(exc).__name__}: {exc}',
                          traceback.format_exc()) from None


def load_registry(plugin_dirs=(), *, entrypoints: bool = True, base_dir: Path | None = None) -> Registry:
    """A registry with built-ins, entry-point plugins and the files of `plugin_dirs`."""
    registry = Registry()
    registry.load_builtins()
    if entrypoints:
        registry.load_entrypoints()
    for directory in plugin_dirs:
        path = Path(directory)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        registry.load_dir(path)
    return registry
