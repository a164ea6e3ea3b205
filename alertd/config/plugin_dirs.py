"""`plugin_dirs`: the directories of site plugins, needed before the rest of the config can be
checked (their plugins define types the config names), and each must exist."""

from __future__ import annotations

from pathlib import Path

from .schema import Where
from .yamlsrc import YamlList


def plugin_dirs_of(raw) -> tuple[str, ...]:
    """The plugin_dirs of a raw config (needed before plugins can be checked)."""
    dirs = raw.get("plugin_dirs", ("plugins",)) if isinstance(raw, dict) else ("plugins",)
    if isinstance(dirs, dict):
        return ()  # a config error, reported by load_config
    if not isinstance(dirs, (list, tuple)):  # one directory, as load_config reads it
        return (str(dirs),) if dirs is not None else ()
    return tuple(str(d) for d in dirs if isinstance(d, (str, int, float)))  # others: config errors


def check_plugin_dirs(dirs, raw, path: str, where: Where) -> None:
    """Every directory `plugin_dirs` names must exist: a missing one hid its plugins silently,
    and the config then failed on their types with no hint why."""
    items = raw.get("plugin_dirs")
    base = Path(path).resolve().parent
    for i, entry in enumerate(dirs):
        full = Path(entry) if Path(entry).is_absolute() else base / entry
        try:
            ok = full.is_dir()
        except OSError:
            ok = False
        if not ok:
            line = items.line_of(i) if isinstance(items, YamlList) else raw.line_of("plugin_dirs")
            where.child("plugin_dirs", raw.line_of("plugin_dirs")).item(i, line).error(
                f"the plugin directory {full} does not exist; create it (and put the site's plugins in it), "
                "fix the path (a relative one is taken from the config file's directory), or remove the entry")
