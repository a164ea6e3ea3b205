"""The walls of the house: package layers, no import cycles, one plugin API, documented hooks."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

import alertd
from alertd import hookspecs
from alertd.plugins import DEFAULT_PLUGINS, Registry

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold(capsys):
    """Layers along the data flow; built-ins off the machinery; foundations import no stage
    (.importlinter, function-level imports included)."""
    code = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_module_imports_another_that_imports_it_back():
    assert _cycles(grimp.build_graph("alertd")) == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges.get(m, set())

    assert _cycles(Graph()) == [["a", "b", "c"]]


def test_no_module_is_longer_than_about_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "alertd").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 420}
    assert long == {}


def test_no_sql_outside_the_store():
    """SQL statements and connections to the store live in alertd/store/ only (the `sql`
    source queries the user's own database, not the store)."""
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b")
    connect = re.compile(r"\bsqlite3?\.connect|sqlite_utils\.Database")
    found = []
    for path in (ROOT / "alertd").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if "store" in rel.parts or rel == Path("alertd/default_plugins/sources/sql.py"):
            continue
        text = path.read_text()
        if sql.search(text) or connect.search(text):
            found.append(str(rel))
    assert found == []


def test_builtins_are_listed_not_scanned_and_every_module_is_listed():
    """Every plugin module, or package (a plugin that needs several modules, as shop_sim), is listed."""
    on_disk = {".".join(p.relative_to(ROOT).with_suffix("").parts)
               for kind in ("sources", "detectors", "notifiers")
               for p in (ROOT / "alertd" / "default_plugins" / kind).glob("[!_]*")
               if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert set(DEFAULT_PLUGINS) == on_disk
    registry = Registry()
    registry.load_builtins()
    assert {info.module for info in registry.all()} == set(DEFAULT_PLUGINS)


def test_the_plugin_api_is_one_import_and_every_name_resolves():
    for name in alertd.__all__:
        assert getattr(alertd, name) is not None, name
    from alertd import Detector, Duration, HttpNotifier, Notifier, Sample, Secret, Source, hookimpl  # noqa: F401
    assert issubclass(HttpNotifier, Notifier)


def test_importing_alertd_or_running_the_cli_help_stays_light():
    code = ("import sys, alertd; heavy = {'numpy', 'jinja2', 'httpx', 'pyod', 'sqlite_utils'} & set(sys.modules);"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _hooks() -> dict:
    """Every hook of the registry's plugin manager (not a hard-coded list)."""
    pm = Registry().pm
    return {name: getattr(hookspecs, name) for name in vars(pm.hook) if not name.startswith("_")}


def test_there_are_hooks_and_each_has_a_docstring():
    hooks = _hooks()
    assert {"register_sources", "register_detectors", "register_notifiers"} <= set(hooks)
    for name, spec in hooks.items():
        assert (spec.__doc__ or "").strip(), f"hook {name} has no docstring"


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_each_hook_signature_is_in_docs_plugins(name):
    """As datasette's test_plugin_hooks_are_documented: the signature, as written in the spec."""
    spec = _hooks()[name]
    signature = f"def {name}{inspect.signature(spec)}"
    assert signature in (ROOT / "docs" / "plugins.md").read_text(), f"{signature} is not in docs/plugins.md"


@pytest.mark.parametrize("name", sorted(_hooks()))
def test_each_hook_is_implemented_by_a_fixture_plugin(name):
    text = "".join(p.read_text() for p in (ROOT / "tests" / "plugins").glob("*.py"))
    assert f"def {name}(" in text, f"no fixture plugin in tests/plugins implements {name}"
