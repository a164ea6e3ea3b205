"""Hostile configs: whatever YAML arrives, loading it gives a valid config or a ConfigError
whose every problem names the file and a line (>= 1); never another exception.

Targets: random documents over alertd's own keys, mutations of the demo alertd.yaml (values
replaced by wrong types, keys dropped, renamed or added), byte-level garbage in the demo
file (invalid UTF-8, control characters), and `alertd validate -c FILE` run in-process on
mutated demo files (exit 0 or 1 with `error: file:line: ...` lines, no traceback). The
case counts are printed at the end of the run (tests/fuzzing.py).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
import yaml
from fuzzing import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st

from alertd.cli import entry as cli
from alertd.config.load import Config, load_config
from alertd.config.schema import ConfigError
from alertd.plugins import load_registry

ROOT = Path(__file__).resolve().parent.parent
DEMO_TEXT = (ROOT / "alertd.yaml").read_text()
DEMO = yaml.safe_load(DEMO_TEXT)
ENV = {"SLACK_WEBHOOK_URL": "https://hooks.example.com/T0/B0/xyz", "SMTP_HOST": "127.0.0.1"}
KEYS = ["store", "plugin_dirs", "retention", "shutdown_timeout", "http", "listen", "token",
        "sources", "rules", "routes", "receivers", "inhibit_rules", "time_intervals", "type",
        "every", "cron", "jitter", "timeout", "name", "source", "series", "detector", "for",
        "clear_for", "severity", "labels", "annotations", "no_data", "flapping", "receiver",
        "group_by", "group_wait", "match", "match_re", "continue", "matchers", "if_env",
        "url", "metrics", "value", "items", "query", "queries", "path", "regex", "command",
        "above", "below", "model", "window", "min_history", "webhook_url", "to", "port"]
TYPES = ["shop_sim", "prometheus", "http_json", "sql", "logfile", "command", "push",
         "csv_replay", "threshold", "zscore", "pyod", "all", "console", "slack", "email",
         "webhook", "pagerduty", "alertmanager", "nope"]
ODD_TEXT = ["30s", "-5s", "0s", "1h30", "5x", "1e309", "${NOPE}", "${HOME:-x}", "{{ x", "{{ 7*7 }}",
            "*/5 * * * *", "61 * * * *", 'a{b=~"("}', "x{y=\"1\"}", "127.0.0.1:99999", "[::1]:0",
            "http://[x/hook", "https://u:p@[::1/x", "http://h:99999999/", "", " ", "\t", "\x00", "\u202e", "é" * 3, "0" * 400, "1" * 5000, "nan", ".inf", "~"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10**30, 10**30),
                    st.floats(), st.sampled_from(ODD_TEXT + TYPES), st.text(max_size=12))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.booleans())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=24)
environs = st.sampled_from([{}, ENV])  # receivers enabled by if_env, or not
documents = st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=8))


@pytest.fixture(scope="module")
def demo_registry():
    """Built-ins plus the demo's site plugins (disk_space). Not tests/plugins again: loading
    them twice would replace the modules (and the state) the session's registry uses."""
    return load_registry([ROOT / "plugins"], entrypoints=False)


def check_load(path: Path, registry, environ) -> str:
    """'valid' or 'error'; fails the test on any other outcome."""
    try:
        config = load_config(path, registry, environ=environ)
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.file == str(path), problem
            assert problem.line >= 1, problem
            assert problem.key and problem.message.strip(), problem
        return "error"
    assert isinstance(config, Config)
    return "valid"


def _dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _paths(node, prefix=()):
    """Every (path) into a nested document, containers first."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def demo_mutations(draw):
    """The demo config with 1-4 mutations: replace, delete, rename or add at random places."""
    doc = copy.deepcopy(DEMO)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = draw(st.sampled_from(["replace", "delete", "rename", "add"]))
        if op == "replace":
            parent[last] = draw(values)
        elif op == "delete":
            del parent[last]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(last)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
    return _dump(doc)


SNIPPETS = ["sources:", "  app: {type: test_list, every: 5s}", "rules:", "  - name: r", "    source: app",
            "    series: cpu", "    detector: {type: test_above, limit: 1}", "receivers:",
            "  team: [{type: test_record}]", "? [a, b]", ": 1", "x: &a {k: v}", "y: *a", "z: *nope",
            "<<: *a", "<<: [*a, *a]", "w: !!python/object/apply:os.system ['touch /tmp/alertd-pwned']",
            "v: !!binary aGVsbG8=", "u: !!set {a, b}", "t: !!omap [a: 1]", "%YAML 1.1", "---", "...",
            "s: |", "  text", "r: >-", "q: 'unterminated", "p: {a: [1, {b: }", "  - - -", "\t: tab",
            "o: 2001-12-14t21:59:43.10-05:00", "n: 0x1F", "m: 0o17", "l: 1_000", "k: .NaN", "j: ~"]


@st.composite
def snippet_documents(draw):
    """YAML text from alertd keys and YAML features: anchors, merges, tags, complex keys."""
    return "\n".join(draw(st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=14))) + "\n"


@st.composite
def garbled_demo(draw):
    """The demo file's bytes with a few spans overwritten by random bytes."""
    data = bytearray(DEMO_TEXT.encode())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data) - 1))
        data[at:at + draw(st.integers(0, 8))] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def load_file(target: str, content: str | bytes, registry, environ) -> None:
    """Write `content` as a config file, load it (check_load) and count the outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        tally(f"config {target} {check_load(path, registry, environ)}")


@fuzz_settings(100)
@given(doc=documents, environ=environs)
def test_random_documents_load_or_say_where(doc, environ, demo_registry):
    load_file("random", _dump(doc), demo_registry, environ)


@fuzz_settings(100)
@given(text=demo_mutations(), environ=environs)
def test_demo_mutations_load_or_say_where(text, environ, demo_registry):
    load_file("demo-mutation", text, demo_registry, environ)


@fuzz_settings(60)
@given(data=garbled_demo(), environ=environs)
def test_garbled_bytes_load_or_say_where(data, environ, demo_registry):
    load_file("garbled-bytes", data, demo_registry, environ)


@fuzz_settings(100)
@given(text=snippet_documents(), environ=environs)
def test_yaml_features_load_or_say_where(text, environ, registry):
    load_file("yaml-features", text, registry, environ)
    assert not Path("/tmp/alertd-pwned").exists()  # tags that build Python objects are refused


@fuzz_settings(25)
@given(text=demo_mutations())
def test_validate_command_exits_0_or_1_with_located_errors(text, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alertd.yaml"
        path.write_text(text)
        (Path(tmp) / "plugins").symlink_to(ROOT / "plugins")
        capsys.readouterr()
        code = cli.main(["validate", "-c", str(path)])
        out, err = capsys.readouterr()
    assert code in (0, 1)
    assert "Traceback" not in out + err and "--debug" not in err, err
    if code == 1:
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert lines and all(line.startswith(f"error: {path}:") for line in lines), err
    tally("config validate-cli " + ("valid" if code == 0 else "error"))


# -- regressions: what the properties found, kept as plain tests ----------------------------
def _load_text(tmp_path, text, registry):
    path = tmp_path / "alertd.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    return [str(p) for p in info.value.problems]


def test_deep_nesting_is_refused_with_its_line(tmp_path, registry):
    """Was: RecursionError out of PyYAML's composer."""
    problems = _load_text(tmp_path, "store: x.db\nsources: " + "[" * 5000 + "]" * 5000 + "\n", registry)
    assert problems == [f"{tmp_path / 'alertd.yaml'}:2: (syntax): the file is not valid YAML: lists "
                        "and mappings are nested more than 64 deep; fix the syntax near that line"]


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path, registry):
    """Was: a 9-level "billion laughs" under an `Any` key (http_json body) passed, and
    `validate -v` printed 350 MB using 740 MB of memory."""
    lines = ['lol: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    problems = _load_text(tmp_path, "\n".join(lines) + "\n", registry)
    assert len(problems) == 1 and "expand this value to more than 250000 values" in problems[0]
    assert problems[0].startswith(f"{tmp_path / 'alertd.yaml'}:6:")


def test_a_few_anchors_and_aliases_still_work(write_config, registry):
    path = write_config("""
        sources:
          app: {type: test_list, every: 5s}
        rules:
          - &base {name: a, source: app, series: cpu, detector: {type: test_above, limit: 90}}
          - {<<: *base, name: b}
          - <<: *base
            name: c
            name: d
        receivers:
          team: [{type: test_record}]
        """)
    problems = _load_text(path.parent, path.read_text(), registry)  # "name" twice in rule c
    assert problems == [f"{path}:8: (syntax): the file is not valid YAML: duplicate key 'name'; "
                        "fix the syntax near that line"]
    path.write_text(path.read_text().replace("    name: d\n", ""))
    assert [r.name for r in load_config(path, registry, environ={}).rules] == ["a", "b", "c"]


def test_a_disabled_integration_with_a_list_as_type_is_an_error(write_config, registry):
    """Was: TypeError (unhashable YamlList) when its if_env variable was unset."""
    path = write_config("""
        receivers:
          team:
            - {type: [], if_env: UNSET_VARIABLE}
        """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    assert [p.line for p in info.value.problems] == [3, 3]
    assert 'unknown notifier type "[]"' in str(info.value)


def test_invalid_utf8_and_control_characters_name_their_line(tmp_path, registry):
    path = tmp_path / "alertd.yaml"
    path.write_bytes(b"store: a.db\nretention: 1d\nsources: {x: \xff}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    assert str(info.value) == f"{path}:3: (file): the byte 0xff is not UTF-8; save the file as UTF-8"
    path.write_bytes(b"store: a.db\nretention: \x00\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    assert str(info.value).startswith(f"{path}:2: (syntax): the file is not valid YAML: the character "
                                      "U+0000 (column 12) is not allowed in YAML")


def test_a_list_as_a_key_is_a_syntax_error_with_its_line(tmp_path, registry):
    """Was: TypeError (unhashable YamlList) from the line-keeping loader."""
    problems = _load_text(tmp_path, "store: a.db\n? [x, y]\n: 2\n", registry)
    assert problems == [f"{tmp_path / 'alertd.yaml'}:2: (syntax): the file is not valid YAML: a list "
                        "or mapping cannot be a key; fix the syntax near that line"]


def test_plugin_dirs_that_is_not_a_list_is_checked_not_crashed(tmp_path, capsys):
    """Was: TypeError ('int' object is not iterable), and OSError (file name too long) for a
    mapping in the list, in `alertd validate` before the config was even checked. (A
    directory that does not exist, "1" or a 5,000-character name, is an error since issue 16.)"""
    from alertd.config.load import plugin_dirs_of

    assert plugin_dirs_of({}) == ("plugins",) and plugin_dirs_of({"plugin_dirs": ["a", 2, {}]}) == ("a", "2")
    path = tmp_path / "alertd.yaml"
    for value, code in (("1", 1), ("{a: b}", 1), ("", 0), ("[{a: b}]", 1), ("[" + "x" * 5000 + "]", 1)):
        path.write_text(f"plugin_dirs: {value}\n")
        assert cli.main(["validate", "-c", str(path)]) == code
        err = capsys.readouterr().err
        assert "Error" not in err and ("plugin_dirs" in err) == (code == 1), err


def test_a_url_that_does_not_parse_is_a_config_error_not_a_crash(tmp_path, registry):
    """Was: ValueError (Invalid IPv6 URL) from collecting a secret URL's parts."""
    problems = _load_text(tmp_path, """\
receivers:
  t:
    - {type: webhook, url: "http://[x/hook"}
    - {type: slack, webhook_url: "https://a:b@[::1/x"}
sources:
  s: {type: http_json, every: 1s, url: "http://u:p@[::1", metrics: [{name: a, value: a}]}
""", registry)
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in problems] == ["3", "4", "6"], problems


def test_child_routes_that_are_not_a_list_are_an_error(tmp_path, registry):
    """Was: TypeError ('float' object is not iterable) for `routes: {..., routes: 1.5}`;
    found by bench/fuzz.py."""
    problems = _load_text(tmp_path, "receivers:\n  console: [{type: console}]\n"
                                    "routes: {receiver: console, routes: 1.5}\n", registry)
    assert problems == [f"{tmp_path / 'alertd.yaml'}:3: routes.routes: expected a list of child routes "
                        "such as [{match: {severity: critical}, receiver: oncall}]"]
