"""Security checks of issue 9 (the daemon-wide log grep is in test_secrets_daemon.py):

- templates are sandboxed: escapes into Python internals are config errors at load time;
- the command notifier runs an argument list, never a shell: shell syntax in a label is data;
- the store (and its WAL/SHM files, and backups) are created with mode 0600;
- the HTTP server listens on loopback unless told otherwise;
- YAML is only ever safe-loaded, and pickled models are only read from the daemon's own
  store (a scan of the source tree).
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import json
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from alertd.base import PluginContext
from alertd.cli import entry as cli
from alertd.config.load import load_config
from alertd.config.schema import ConfigError, parse_params
from alertd.config.yamlsrc import _LineLoader
from alertd.default_plugins.notifiers.command import CommandNotifier
from alertd.render.renderer import SAMPLE_T0, TemplateText, sample_notification
from alertd.store import Store

ROOT = Path(__file__).resolve().parent.parent
ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].system('touch /tmp/alertd-pwned') }}",
    "{{ self._TemplateReference__context }}",
    "{{ incidents.__class__.__base__.__subclasses__() }}",
    "{{ (incidents|first).labels.__class__.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ incidents.pop() }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused_when_the_config_loads(template, write_config, registry):
    with pytest.raises(ValueError, match="fails on a sample incident"):
        TemplateText.from_config(template)
    path = write_config(f"""
        receivers:
          team:
            - type: webhook
              url: http://127.0.0.1:9/hook
              text_template: {json.dumps(template)}
        """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (5, "receivers.team[0].text_template")
    assert "fails on a sample incident" in problem.message
    assert not Path("/tmp/alertd-pwned").exists()


SHELL_TRICKS = ["; touch {x}", "$(touch {x})", "`touch {x}`", "| touch {x}", "&& touch {x}", "\n touch {x}"]
PROBE = """\
import json, os, sys
with open(os.environ["OUT"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("ALERTD_")},
               "stdin": json.load(sys.stdin)}, f)
"""


def test_the_command_notifier_never_uses_a_shell(tmp_path):
    probe, out, marker = tmp_path / "probe.py", tmp_path / "out.json", tmp_path / "pwned"
    probe.write_text(PROBE)
    tricks = [t.format(x=marker) for t in SHELL_TRICKS]
    labels = {f"l{i}": trick for i, trick in enumerate(tricks)}
    n = sample_notification("firing")
    incident = dataclasses.replace(n.incidents[0], labels=labels)
    n = dataclasses.replace(n, incidents=(incident,))
    params = parse_params(CommandNotifier.Params, {"command": [sys.executable, str(probe), tricks[0]],
                                                   "env": {"OUT": str(out)}, "timezone": "UTC"})
    notifier = CommandNotifier(params, PluginContext("remediation", lambda: SAMPLE_T0))
    asyncio.run(notifier.send(n))
    seen = json.loads(out.read_text())
    assert not marker.exists()
    assert seen["argv"] == [tricks[0]]  # an argument, as written
    assert [seen["env"][f"ALERTD_LABEL_L{i}"] for i in range(len(tricks))] == tricks
    assert seen["stdin"]["incidents"][0]["labels"] == labels


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_store_its_wal_files_and_backups_are_private(tmp_path, capsys):
    old = os.umask(0o022)  # the usual umask would give 0644
    try:
        path = tmp_path / "var" / "alertd.db"
        store = Store(path)
        store.set_kv("x", 1)
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        backup = tmp_path / "backup.db"
        assert cli.main(["backup", "--store", str(path), str(backup)]) == 0
        store.close()
        assert _mode(backup) == 0o600
    finally:
        os.umask(old)


def test_an_existing_store_keeps_the_mode_its_operator_chose(tmp_path):
    path = tmp_path / "alertd.db"
    Store(path).close()
    path.chmod(0o640)
    Store(path).close()
    assert _mode(path) == 0o640


def test_the_http_server_listens_on_loopback_by_default(write_config, registry):
    config = load_config(write_config("receivers: {console: [{type: console}]}\n"), registry, environ={})
    assert (config.http.host, config.http.port, config.http.loopback) == ("127.0.0.1", 9464, True)
    config = load_config(write_config("http: {token: a-long-enough-api-token}\n"), registry, environ={})
    assert config.http.listen == "127.0.0.1:9464" and config.http.token


# -- a scan of the source tree ----------------------------------------------------------------
def _calls(path: Path):
    """(dotted name, line, call node) of every call in a Python file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node.lineno, node


def _sources():
    for folder in ("alertd", "plugins"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def _names(path: Path):
    """Every dotted name (attribute chain) used in a Python file."""
    tree = ast.parse(path.read_text(), str(path))
    return {ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def test_yaml_is_only_safe_loaded_and_pickles_only_come_from_the_store():
    found, yaml_users = [], []
    for path in _sources():
        rel = str(path.relative_to(ROOT))
        for name, line, node in _calls(path):
            if name.startswith(("yaml.", "pickle.", "marshal.", "shelve.", "dill.", "cloudpickle.", "joblib.")) \
                    and name.split(".")[-1] in ("load", "loads", "unsafe_load", "full_load", "load_all",
                                                "unsafe_load_all", "open", "Unpickler", "compose"):
                found.append(f"{rel}:{name}")
            if name.endswith(".load_model"):
                found.append(f"{rel}:load_model")
        if any(n.startswith("yaml.") for n in _names(path)):
            yaml_users.append(rel)
        assert not {"yaml.Loader", "yaml.FullLoader", "yaml.UnsafeLoader", "yaml.UnsafeConstructor",
                    "yaml.unsafe_load"} & _names(path), rel
    assert sorted(found) == ["alertd/engine/training.py:load_model"]
    # unpickling is Detector.load_model -> alertd._compat.loads: the one Unpickler, which only
    # maps old alertd module paths to new ones (nothing else is allowed or disallowed there)
    unpicklers = [str(p.relative_to(ROOT)) for p in _sources() if "pickle.Unpickler" in _names(p)]
    assert unpicklers == ["alertd/_compat.py"]
    assert "return loads(blob)" in (ROOT / "alertd/base.py").read_text()
    # the one module that parses YAML does it with a SafeLoader subclass, and nothing else does
    assert yaml_users == ["alertd/config/yamlsrc.py"]
    assert issubclass(_LineLoader, yaml.SafeLoader)
    assert not any(issubclass(_LineLoader, bad) for bad in (yaml.FullLoader, yaml.UnsafeLoader))
    assert "_LineLoader(text)" in (ROOT / "alertd/config/yamlsrc.py").read_text()
    # the one caller of load_model unpickles the blob it has just read from the daemon's store
    training = (ROOT / "alertd/engine/training.py").read_text()
    assert "stored = self.store.models.load(st.name)" in training
    assert "det.install(det.load_model(stored.blob))" in training


def test_no_shell_and_no_eval_anywhere():
    bad = []
    for path in _sources():
        for name, line, node in _calls(path):
            shell = any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                        for k in node.keywords)
            if shell or name in ("os.system", "os.popen", "eval", "exec", "asyncio.create_subprocess_shell",
                                 "subprocess.getoutput", "subprocess.getstatusoutput"):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert bad == []


def test_credentials_in_a_source_url_are_secrets(write_config, registry):
    """Was: a password or api_key in a source's url was shown by `validate -v`, and when the
    service echoed the query back, in the daemon's log, the status page and /api/v1/status."""
    path = write_config("""
        sources:
          psp:
            type: http_json
            every: 1m
            url: "https://scraper:pa55word@status.example.com/api?api_key=k3y-0123&page=1"
            metrics: [{name: up, value: up}]
        """)
    config = load_config(path, registry, environ={})
    assert {"pa55word", "k3y-0123"} <= config.secrets and "scraper" not in config.secrets
    assert not {"1", "page", "/api"} & config.secrets
