"""Plugin discovery: built-ins, entry points of a (fake) installed distribution, plugin_dirs."""

from __future__ import annotations

import importlib
import inspect
import json
import sys

import pytest

from alertd import hookspecs
from alertd.cli.entry import main
from alertd.plugins import PluginError, Registry, load_registry

SITE_PLUGIN = '''
from dataclasses import dataclass
from alertd import hookimpl
from alertd.base import Source

class Weather(Source):
    """Weather from nowhere."""
    type_name = "{name}"

    @dataclass(frozen=True)
    class Params:
        city: str = "Berlin"

@hookimpl
def register_sources(register):
    register(Weather)
'''


def test_builtins_register_through_the_plugin_path():
    registry = load_registry(entrypoints=False)
    kinds = {(i.kind, i.name): i.origin for i in registry.all()}
    assert kinds[("notifier", "console")] == "built-in"
    assert all(i.module.startswith("alertd.default_plugins.") for i in registry.all())


def test_plugin_dir_file_is_loaded_with_its_path_as_origin(tmp_path):
    (tmp_path / "weather.py").write_text(SITE_PLUGIN.format(name="weather"))
    (tmp_path / "_private.py").write_text("raise RuntimeError('must not be imported')")
    registry = load_registry([tmp_path], entrypoints=False)
    info = registry.by_kind["source"]["weather"]
    assert info.origin == str(tmp_path / "weather.py")


def test_duplicate_name_names_both_origins(tmp_path):
    (tmp_path / "dup.py").write_text(SITE_PLUGIN.format(name="weather").replace("Weather", "W2"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "weather.py").write_text(SITE_PLUGIN.format(name="weather"))
    with pytest.raises(PluginError) as info:
        load_registry([tmp_path, other], entrypoints=False)
    message = str(info.value)
    assert message.startswith('duplicate source type "weather": registered by ')
    assert str(tmp_path / "dup.py") in message and str(other / "weather.py") in message


def test_import_error_is_reported_with_the_plugin_name(tmp_path):
    (tmp_path / "broken.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(PluginError) as info:
        load_registry([tmp_path], entrypoints=False)
    assert str(info.value).startswith('error loading plugin "broken": ModuleNotFoundError: ')
    assert "does_not_exist_anywhere" in info.value.details


def test_entry_point_of_an_installed_distribution(tmp_path, monkeypatch):
    pkg = tmp_path / "alertd_weather.py"
    pkg.write_text(SITE_PLUGIN.format(name="weather_ep"))
    dist = tmp_path / "alertd_weather-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alertd-weather\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[alertd]\nweather = alertd_weather\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        registry = load_registry()
        info = registry.by_kind["source"]["weather_ep"]
        assert info.origin == "distribution alertd-weather 1.2"
    finally:
        sys.modules.pop("alertd_weather", None)


def test_a_broken_entry_point_is_a_load_error(tmp_path, monkeypatch):
    dist = tmp_path / "alertd_bad-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: alertd-bad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[alertd]\nbad = alertd_missing_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with pytest.raises(PluginError, match='^error loading plugin "bad": ModuleNotFoundError'):
        load_registry()


def test_register_rejects_non_plugin_classes():
    class Bad:
        @staticmethod
        @hookspecs.hookimpl
        def register_sources(register):
            register(dict)

    with pytest.raises(PluginError, match="is not a subclass of alertd.base.Source"):
        Registry().add_module(Bad, "test", "undo-bad")


def test_cli_plugins_json_lists_kind_and_origin(tmp_path, monkeypatch, capsys):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "weather.py").write_text(SITE_PLUGIN.format(name="weather"))
    (tmp_path / "alertd.yaml").write_text("plugin_dirs: [plugins]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["plugins", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["weather"]["kind"] == "source"
    assert rows["weather"]["origin"] == str(tmp_path / "plugins" / "weather.py")
    assert rows["console"]["origin"] == "built-in"


def test_cli_reports_a_broken_site_plugin_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "oops.py").write_text("1/0\n")
    (tmp_path / "alertd.yaml").write_text("plugin_dirs: [plugins]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: error loading plugin "oops": ZeroDivisionError: division by zero')
    assert "Traceback" not in err


def test_every_hook_has_a_docstring_and_a_test():
    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("register_")]
    assert sorted(specs) == ["register_detectors", "register_notifiers", "register_sources"]
    here = open(__file__).read() + open(__file__.replace("test_plugins.py", "plugins/fixture_plugins.py")).read()
    for name in specs:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert f"def {name}(" in here, f"no test plugin implements {name}"
