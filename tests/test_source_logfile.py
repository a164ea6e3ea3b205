"""The logfile source on real files: counts per upstream, rotation, truncation, restarts."""

from __future__ import annotations

import asyncio
import os

import pytest
from source_helpers import counter, make_source
from structlog.testing import capture_logs

from alertd.base import SourceError
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.metrics import Metrics
from alertd.store import Store

FIVE_XX = {"name": "http_5xx", "regex": r'" (?P<status>5\d\d) \d+ upstream=(?P<upstream>[^ ]+)'}
LATENCY = {"name": "upstream_seconds", "regex": r"upstream=(?P<upstream>[^ ]+) rt=(?P<rt>[0-9.]+)",
           "value": "rt", "aggregate": "avg"}
ALL = {"name": "requests", "regex": r'^\S+ "'}


def line(status: int, upstream: str, rt: float = 0.1, path: str = "/") -> str:
    return f'10.0.0.1 "GET {path} HTTP/1.1" {status} 512 upstream={upstream} rt={rt}\n'


def append(path, *lines, raw: bytes = b"") -> None:
    with open(path, "ab") as f:
        f.write("".join(lines).encode() + raw)


def run(coro):
    return asyncio.run(coro)


def poll(source) -> dict[str, float]:
    samples = run(source.collect())
    source.commit()
    source.committed()
    return {s.key: s.value for s in samples}


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "access.log"
    path.write_text(line(500, "old") * 3)  # history before the source first looks: skipped
    return path


def source_for(registry, clock, path, store=None, metrics=None, **params):
    source = make_source(registry, "logfile", {"path": str(path), "metrics": [FIVE_XX, LATENCY, ALL], **params},
                         clock, name="nginx", store=store, metrics=metrics)
    run(source.start())
    return source


def test_counts_and_values_per_upstream_from_new_lines(log, registry, clock):
    source = source_for(registry, clock, log)
    assert poll(source) == {"requests": 0.0}  # starts at the end, like tail -f
    append(log, line(502, "checkout", 0.5), line(200, "checkout", 1.5), line(503, "search", 2.0),
           line(502, "checkout", 1.0), "a line that matches nothing\n")
    samples = poll(source)
    assert samples['http_5xx{status="502",upstream="checkout"}'] == 2
    assert samples['http_5xx{status="503",upstream="search"}'] == 1
    assert samples['upstream_seconds{upstream="checkout"}'] == pytest.approx(1.0)
    assert samples["requests"] == 4
    append(log, line(200, "search"))
    quiet = poll(source)  # label sets seen before read 0 instead of going silent
    assert quiet['http_5xx{status="502",upstream="checkout"}'] == 0
    assert quiet['upstream_seconds{upstream="search"}'] == pytest.approx(0.1)
    assert 'upstream_seconds{upstream="checkout"}' not in quiet  # no value is not a value of 0


def test_a_partial_last_line_waits_for_its_newline(log, registry, clock):
    source = source_for(registry, clock, log)
    poll(source)
    append(log, line(500, "a"), raw=b'10.0.0.1 "GET / HTTP/1.1" 500 1 upstr')
    assert poll(source)["requests"] == 1
    append(log, raw=b"eam=b rt=0.1\n")
    assert poll(source)['http_5xx{status="500",upstream="b"}'] == 1


def test_rotation_reads_the_rest_of_the_old_file_then_the_new_one(log, registry, clock):
    metrics = Metrics()
    source = source_for(registry, clock, log, metrics=metrics)
    poll(source)
    append(log, line(500, "a"))
    os.rename(log, str(log) + ".1")  # logrotate's create mode
    append(str(log) + ".1", line(500, "a"))  # the server writes to the old file until reopened
    append(log, line(500, "b"))
    samples = poll(source)
    assert samples['http_5xx{status="500",upstream="a"}'] == 2
    assert samples['http_5xx{status="500",upstream="b"}'] == 1
    assert counter(metrics, "logfile_reopens", "nginx", "rotated") == 1
    append(log, line(500, "b"))
    assert poll(source)['http_5xx{status="500",upstream="b"}'] == 1


def test_truncation_starts_again_from_the_top(log, registry, clock):
    metrics = Metrics()
    source = source_for(registry, clock, log, metrics=metrics)
    poll(source)
    append(log, line(500, "a"), line(500, "a"))
    poll(source)
    with open(log, "r+b") as f:  # copytruncate
        f.truncate(0)
    append(log, line(503, "c"))
    assert poll(source)['http_5xx{status="503",upstream="c"}'] == 1
    assert counter(metrics, "logfile_reopens", "nginx", "truncated") == 1


def test_restart_neither_rereads_nor_skips(log, registry, clock, tmp_path):
    store = Store(tmp_path / "alertd.db")
    source = source_for(registry, clock, log, store=store)
    poll(source)
    append(log, line(500, "a"))
    assert poll(source)["requests"] == 1
    append(log, line(500, "a"), line(500, "a"))  # written while alertd is down
    run(source.close())
    again = source_for(registry, clock, log, store=store)
    samples = poll(again)
    assert samples["requests"] == 2 and samples['http_5xx{status="500",upstream="a"}'] == 2
    append(log, line(500, "z"))
    os.rename(log, str(log) + ".1")  # rotated while down: the rest of the old file is found by inode
    append(log, line(500, "y"))
    third = source_for(registry, clock, log, store=store)
    samples = poll(third)
    assert samples['http_5xx{status="500",upstream="z"}'] == 1
    assert samples['http_5xx{status="500",upstream="y"}'] == 1
    assert samples['http_5xx{status="500",upstream="a"}'] == 0  # known label set, remembered
    store.close()


def test_an_uncommitted_poll_is_read_again_after_a_restart(log, registry, clock, tmp_path):
    store = Store(tmp_path / "alertd.db")
    source = source_for(registry, clock, log, store=store)
    poll(source)
    append(log, line(500, "a"))
    assert run(source.collect())  # the tick storing these never committed (crash)
    again = source_for(registry, clock, log, store=store)
    assert poll(again)["requests"] == 1
    store.close()


def test_lines_that_are_not_utf8_are_counted_and_still_matched(log, registry, clock):
    metrics = Metrics()
    source = source_for(registry, clock, log, metrics=metrics)
    poll(source)
    append(log, line(200, "a"), raw=b'10.0.0.1 "GET /caf\xe9 HTTP/1.1" 502 1 upstream=a rt=0.1\n')
    with capture_logs() as logs:
        samples = poll(source)
    assert samples['http_5xx{status="502",upstream="a"}'] == 1
    assert counter(metrics, "logfile_lines", "nginx", "undecodable") == 1
    assert counter(metrics, "logfile_lines", "nginx", "matched") == 2
    (event,) = [e for e in logs if e["event"] == "logfile_undecodable_lines"]
    assert event["source"] == "nginx" and event["count"] == 1
    assert "GET /caf\\\\xe9" in event["excerpt"]  # the bad byte, shown escaped


def test_a_missing_file_is_a_source_error(tmp_path, registry, clock):
    source = source_for(registry, clock, tmp_path / "nope.log")
    with pytest.raises(SourceError, match="does not exist") as info:
        run(source.collect())
    assert info.value.reason == "missing"


def test_config_checks_regexes_and_value_groups(write_config, registry):
    path = write_config("""
        sources:
          nginx:
            type: logfile
            every: 1m
            path: /var/log/nginx/access.log
            metrics:
              - {name: a, regex: "(?P<status>5\\\\d\\\\d"}
              - {name: b, regex: "rt=(?P<rt>[0-9.]+)", value: seconds}
              - {name: c, regex: "x", aggregate: avg}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    text = str(info.value)
    assert 'alertd.yaml:7: sources.nginx.metrics[0]: the regex "(?P<status>5\\d\\d" is invalid: missing ), ' \
        "unterminated subpattern at position 0" in text
    assert 'alertd.yaml:8: sources.nginx.metrics[1]: value "seconds" is not a named group' in text
    assert 'alertd.yaml:9: sources.nginx.metrics[2]: aggregate "avg" needs "value"' in text


# -- hostile lines and files ----------------------------------------------------------------------

FREEZE = {"name": "host_5xx", "regex": r"host=(?P<host>([a-z0-9-]+\.?)+) status=5\d\d"}


@pytest.mark.timeout(30)  # Python's re took 11+ minutes on the first line (exponential backtracking)
def test_a_backtracking_regex_on_a_long_line_returns_at_once(log, registry, clock):
    source = make_source(registry, "logfile", {"path": str(log), "metrics": [FREEZE]}, clock, name="nginx")
    run(source.start())
    poll(source)
    append(log, "host=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa status=200 path=/\n" * 100,
           f"host={'a' * 5000}.{'b' * 5000} status=200\n", "host=api.example status=503 path=/\n")
    assert poll(source) == {'host_5xx{host="api.example"}': 1.0}


@pytest.mark.parametrize("regex, what", [
    (r"(?P<u>\w+) \1", r"a backreference (\1)"),
    (r"(?<=GET )/checkout", "a lookbehind ((?<=...) or (?<!...))"),
    (r"status=(?!200)\d+", "a lookahead ((?=...) or (?!...))"),
    (r"(?>a+)b", "an atomic group ((?>...))"),
    (r"a++", "a possessive quantifier (such as a++)"),
])
def test_regexes_re2_cannot_run_are_config_errors_at_their_line(write_config, registry, regex, what):
    path = write_config(f"""
        sources:
          nginx:
            type: logfile
            every: 1m
            path: /var/log/nginx/access.log
            metrics:
              - {{name: a, regex: '{regex}'}}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    assert str(info.value).splitlines()[-1].endswith(
        f'alertd.yaml:7: sources.nginx.metrics[0]: the regex "{regex}" uses {what}, which alertd does not '
        "support: its regexes run on RE2 (as Prometheus, Alertmanager and Loki do), which matches in linear "
        "time; rewrite it without that")


def test_a_symlink_at_the_path_is_refused_unless_the_source_follows_links(log, registry, clock, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(line(500, "root:$6$hash") * 2)
    source = source_for(registry, clock, log)
    poll(source)
    append(log, line(500, "a"))
    os.rename(log, str(log) + ".1")
    os.symlink(secret, log)  # whoever can write the log directory puts a link there
    with pytest.raises(SourceError, match=r"access.log is a symbolic link \(to .*shadow\); alertd does not "
                                          r"follow links unless the source sets follow_symlinks: true"):
        run(source.collect())
    linked = source_for(registry, clock, log, start_at="beginning", follow_symlinks=True)
    assert poll(linked)['http_5xx{status="500",upstream="root:$6$hash"}'] == 2  # as configured


def test_copytruncate_then_fast_growth_reads_the_new_lines_from_the_top(log, registry, clock):
    """The file is truncated and grows past the old offset before the next poll: the size
    alone cannot tell, the fingerprint of its first bytes does (38 of 100 lines were lost)."""
    metrics = Metrics()
    source = source_for(registry, clock, log, metrics=metrics)
    poll(source)
    append(log, *[line(500, "a")] * 100)
    assert poll(source)['http_5xx{status="500",upstream="a"}'] == 100
    with open(log, "r+b") as f:  # copytruncate: copied elsewhere, then emptied in place
        f.truncate(0)
    append(log, *[line(503, "b", path="/a-longer-path") for _ in range(100)])
    samples = poll(source)
    assert samples['http_5xx{status="503",upstream="b"}'] == 100
    assert counter(metrics, "logfile_reopens", "nginx", "truncated") == 1
