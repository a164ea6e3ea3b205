"""`alertd routes test|show` against Alertmanager's own answer: Debian's `amtool config routes
test` on the same route tree (alertd's `routes` section is Alertmanager's `route`)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest
import yaml
from configs import config_text

from alertd.cli.entry import main
from alertd.routing.route_match import matching_routes, parse_labels

RECEIVERS = ["console", "oncall", "payments", "shop", "night"]
ROUTES = {
    "receiver": "console", "group_by": ["rule"], "group_wait": "10s",
    "routes": [
        {"matchers": ['severity="critical"'], "receiver": "oncall", "continue": True, "repeat_interval": "1h",
         "routes": [{"match_re": {"provider": "stripe|adyen"}, "receiver": "payments", "group_by": ["provider"]}]},
        {"match": {"team": "shop"}, "receiver": "shop", "group_by": ["..."]},
        {"matchers": ['severity=~"warn.*"', 'team!="x"'], "receiver": "shop", "continue": True},
        {"matchers": ['rule="orders_anomaly"'], "receiver": "night"},
    ]}
CASES = [
    "severity=critical provider=stripe team=shop",
    "severity=critical team=shop",
    "severity=critical provider=klarna",
    "severity=warning team=y",
    "severity=warning team=x",
    "severity=warning rule=orders_anomaly",
    "alertname=orders_anomaly",
    "foo=bar",
]


def write(write_config, routes=ROUTES, receivers=RECEIVERS):
    return write_config(config_text(receivers={r: [{"type": "console"}] for r in receivers}, routes=routes,
                                    rules=[], sources={}))


def amtool(tmp_path, routes, receivers, labels: list[str]) -> str:
    # amtool comes with Debian's prometheus-alertmanager (scripts/system-deps.sh installs it)
    assert shutil.which("amtool"), "amtool is missing: run scripts/system-deps.sh"
    am = tmp_path / "alertmanager.yml"
    am.write_text(yaml.safe_dump({"route": routes, "receivers": [{"name": r} for r in receivers]}))
    done = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={am}", *labels],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def alertd_answer(capsys, path, labels: list[str]) -> str:
    assert main(["routes", "test", "-c", str(path), *labels]) == 0
    return capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize("labels", CASES)
def test_routes_test_answers_as_amtool(write_config, tmp_path, capsys, labels):
    words = labels.split()
    # amtool gets both names of the rule, as alertd's router sets them
    am_words = [*words, *(f"rule={w.split('=')[1]}" for w in words if w.startswith("alertname="))]
    am_words += [f"alertname={w.split('=')[1]}" for w in words if w.startswith("rule=")]
    assert alertd_answer(capsys, write(write_config), words) == amtool(tmp_path, ROUTES, RECEIVERS, am_words)


def random_tree(rng: random.Random, depth: int = 0) -> dict:
    names, values = ["severity", "team", "provider"], ["a", "b", "c"]
    node = {"receiver": rng.choice(RECEIVERS)}
    if depth:
        kind = rng.choice(["match", "match_re", "matchers"])
        name, value = rng.choice(names), rng.choice(values)
        if kind == "match":
            node["match"] = {name: value}
        elif kind == "match_re":
            node["match_re"] = {name: f"{value}|{rng.choice(values)}"}
        else:
            op = rng.choice(["=", "!=", "=~", "!~"])
            node["matchers"] = [f'{name}{op}"{value if "~" not in op else value + ".*"}"']
        node["continue"] = rng.random() < 0.4
    if depth < 3:
        children = [random_tree(rng, depth + 1) for _ in range(rng.randint(0, 3 if depth else 4))]
        if children:
            node["routes"] = children
    return node


def test_random_trees_answer_as_amtool(write_config, tmp_path, capsys):
    rng = random.Random(19)
    compared = 0
    for _ in range(6):
        routes = random_tree(rng)
        path = write(write_config, routes)
        for _ in range(8):
            words = [f"{n}={rng.choice('abcd')}" for n in ("severity", "team", "provider") if rng.random() < 0.8]
            if not words:
                continue
            assert alertd_answer(capsys, path, words) == amtool(tmp_path, routes, RECEIVERS, words), (routes, words)
            compared += 1
    assert compared >= 40


def test_routes_show_draws_the_tree_as_amtool(write_config, tmp_path, capsys):
    # (match_re is left out: amtool shows the anchored regex Alertmanager builds from it)
    routes = {**ROUTES, "routes": [r for r in ROUTES["routes"] if "match_re" not in json.dumps(r)]}
    assert main(["routes", "-c", str(write(write_config, routes))]) == 0
    ours = capsys.readouterr().out.strip()
    am = tmp_path / "alertmanager.yml"
    am.write_text(yaml.safe_dump({"route": routes, "receivers": [{"name": r} for r in RECEIVERS]}))
    theirs = subprocess.run(["amtool", "config", "routes", "show", f"--config.file={am}"],
                            capture_output=True, text=True, timeout=30).stdout.strip()
    assert ours == theirs


def test_routes_test_says_how_the_alert_is_grouped(write_config, capsys):
    path = write(write_config)
    assert main(["routes", "test", "-c", str(path), "--tree", "severity=critical", "provider=stripe",
                 "rule=payment_success_drop"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "payments"
    assert ('  payments: route default-route > {severity="critical"} > {provider=~"stripe|adyen"}' in out)
    assert 'group_by [provider] -> group {provider="stripe"}; group_wait 10s, group_interval 5m, ' \
           "repeat_interval 1h" in out
    assert "Matching routes:" in out and "receiver: payments" in out
    assert main(["routes", "test", "-c", str(path), "--json", "team=shop", "rule=x"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["receivers"] == ["shop"] and data["routes"][0]["group_by"] == ["..."]
    assert data["routes"][0]["group_labels"] == {"team": "shop", "rule": "x", "alertname": "x"}
    assert main(["routes", "test", "-c", str(path), "--expect", "oncall", "team=shop"]) == 1
    assert "expected the receivers oncall, got shop" in capsys.readouterr().out


@pytest.mark.parametrize("words, message", [
    (["severity"], "'severity' is not a label"),
    (["severity=~crit.*"], "'severity=~crit.*' is a =~ matcher; an alert's label is written name=value"),
])
def test_routes_test_explains_bad_labels(write_config, capsys, words, message):
    assert main(["routes", "test", "-c", str(write(write_config)), *words]) == 1
    assert message in capsys.readouterr().err


def test_matching_routes_is_the_routers_answer(write_config, registry):
    from alertd.config.load import load_config
    from alertd.routing.router import match_route
    config = load_config(write(write_config), registry, environ={})
    for case in CASES:
        labels = parse_labels(case.split())
        found = matching_routes(config.routes, labels)
        assert [m.receiver for m in found] == match_route(config.routes, found[0].labels)
