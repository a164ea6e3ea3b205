"""Annotation templates: Jinja2 in the notification sandbox, with Prometheus' habits accepted.

The Prometheus functions are compared with Prometheus itself: Debian's `promtool test rules`
evaluates the same templates on the same values and must expect exactly what alertd renders.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from configs import config_text
from test_render import BOMBS

from alertd.cli.entry import main
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.model import Incident
from alertd.render.annotations import check_annotation, render_annotation, render_annotations, translate


def incident(value=0.3123, **labels) -> Incident:
    return Incident(fingerprint="f", rule="payment_success_drop", labels=labels or {"provider": "adyen"},
                    state="firing", severity="critical", started_at=1_700_000_000.0, last_value=value,
                    expected_low=0.9, reason="payment_success_ratio 0.31, expected >= 0.9", id=17)


@pytest.mark.parametrize("text, shown", [
    ("Payment success {{ value }} at {{ labels.provider }}", "Payment success 0.3123 at adyen"),
    ("{{ rule }} / {{ severity }} / {{ labels.missing }}.", "payment_success_drop / critical / ."),
    ("{{ $labels.provider }} at {{ $value | humanizePercentage }}", "adyen at 31.23%"),
    ("{{ humanize $value }} {{ .Labels.provider }} {{ .Value }}", "312.3m adyen 0.3123"),
    ('{{ printf "%.2f" $value }} / {{ $value | printf "%.1f" }}', "0.31 / 0.3"),
    ("{{ (value * 100) | round(1) }}% (expected {{ expected }})", "31.2% (expected >= 0.9)"),
    ("{% if value < 0.5 %}bad{% else %}ok{% endif %} {{ labels.provider | upper }}", "bad ADYEN"),
    ("no template here {", "no template here {"),
])
def test_annotations_render_jinja_and_prometheus_habits(text, shown):
    inc = incident()
    inc.annotations = {"a": text}
    assert render_annotations(inc)["a"] == shown


def test_label_values_are_data_never_template_code():
    inc = incident(provider="{{ 7*7 }}")
    assert render_annotation("at {{ $labels.provider }}", inc) == "at {{ 7*7 }}"


def test_translate_leaves_text_outside_templates_alone():
    assert translate("costs $value; {{ $value }} and .Labels") == "costs $value; {{ value }} and .Labels"


def test_a_failing_annotation_is_shown_as_written_and_logged():
    logged = []

    class Log:
        def warning(self, event, **kw):
            logged.append((event, kw))

    inc = incident()
    inc.annotations = {"summary": "{{ labels.sku | humanize }} left", "plain": "ok {{ value }}"}
    out = render_annotations(inc, log=Log())
    assert out == {"summary": "{{ labels.sku | humanize }} left", "plain": "ok 0.3123"}
    assert logged[0][0] == "annotation_failed" and logged[0][1]["annotation"] == "summary"


@pytest.mark.parametrize("text, message", [
    ("Payment {{ value }", "does not compile (template line 1: unexpected '}')"),
    ("{{ labels.__class__ }}", "fails on a sample incident"),
    ("{% for x in value %}{% endfor %}", "fails on a sample incident"),
])
def test_check_annotation_names_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_annotation(text)


def test_check_annotation_accepts_labels_the_sample_lacks():
    check_annotation("{{ $labels.sku | humanize }} units of {{ labels.sku }}")



# -- bombs: annotations are bounded as receivers' templates are (alertd.render.guard) ------------
@pytest.mark.timeout(60)  # was: validate ran without end (nested loops) or took gigabytes
@pytest.mark.parametrize("name", [n for n in BOMBS if "incidents[0]" not in BOMBS[n]] + ["a wide printf"])
def test_an_annotation_that_loops_or_allocates_without_end_is_refused(name):
    text = BOMBS.get(name) or '{{ printf "%01000000000d" $value }}'
    with pytest.raises(ValueError) as info:
        check_annotation(text)
    message = str(info.value)
    assert message.startswith("the template fails on a sample incident (")
    assert "limited" in message or "not allowed in templates" in message or "not in templates" in message


@pytest.mark.timeout(60)
def test_an_annotation_bomb_only_real_incidents_set_off_is_shown_as_written_from_then_on():
    """The pages render every listed incident's annotations on the event loop: a bomb is
    cut off at the time limit once, and never rendered again."""
    logged = []

    class Log:
        def warning(self, event, **kw):
            logged.append((event, kw))

    text = ("{% if labels.provider == 'stripe' %}{% for i in range(100000) %}{% for j in range(100000) %}"
            "{% endfor %}{% endfor %}{% endif %}{{ labels.provider }} down")
    check_annotation(text)  # the sample incident passes
    inc = incident(provider="stripe")
    inc.annotations = {"summary": text}
    assert render_annotations(inc, log=Log()) == {"summary": text}
    assert render_annotations(inc, log=Log()) == {"summary": text}
    (entry,) = logged  # once: the second call did not render it
    assert entry[1]["using"] == "the text as written from now on"
    assert "rendering took more than 0.25s" in entry[1]["error"]
    fine = incident(provider="adyen")
    fine.annotations = {"summary": text.replace(" down", " is down")}  # another text renders as usual
    assert render_annotations(fine) == {"summary": "adyen is down"}


# built-in plugins only: `alertd validate` in this process must not load tests/plugins again
BROKEN = config_text(
    sources={"app": {"type": "shop_sim", "every": "5s"}},
    receivers={"rec": [{"type": "console"}]},
    rules=[{"name": "ok", "source": "app", "series": "cpu", "detector": {"type": "threshold", "above": 90},
            "annotations": {"summary": "{{ $labels.host }} at {{ $value | humanize }}"}},
           {"name": "broken", "source": "app", "series": "cpu", "detector": {"type": "threshold", "above": 90},
            "annotations": {"summary": "fine", "description": "CPU {{ value }"}}])


def test_validate_reports_a_broken_annotation_at_its_line(write_config, registry, capsys):
    path = write_config(BROKEN)
    assert main(["validate", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "CPU {{ value }" in text)
    assert (f"{path}:{line}: rules[broken].annotations.description: the template does not compile "
            "(template line 1: unexpected '}')") in err
    assert "rules[ok]" not in err
    # a reload checks the same way (the daemon's plan_reload passes the check too)
    with pytest.raises(ConfigError, match="annotations.description"):
        from alertd.render.annotations import check_annotation as check
        load_config(path, registry, annotation_check=check)


# -- Prometheus itself ----------------------------------------------------------------------------
PROM_TEMPLATES = {
    "h": "{{ $value | humanize }}", "hcall": "{{ humanize $value }}", "h1024": "{{ $value | humanize1024 }}",
    "dur": "{{ $value | humanizeDuration }}", "pct": "{{ humanizePercentage $value }}",
    "ts": "{{ $value | humanizeTimestamp }}", "fmt": '{{ printf "%.2f" $value }}',
    "pipe": '{{ $value | printf "%.3e" }}', "lab": "{{ $labels.sku | toUpper }} / {{ .Labels.name | title }}",
}
VALUES = [0, 1, 999.5, 1234567, 0.000123, 3725, 90061, 0.25, 0.1234, -5, 1048576, 1700000000, 2.5e-9, 61]


def test_humanize_functions_render_as_prometheus_does(tmp_path):
    assert shutil.which("promtool"), "promtool comes with Debian's prometheus: run scripts/system-deps.sh"
    rules = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "m", "annotations": PROM_TEMPLATES}]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    series, alerts = [], []
    for i, v in enumerate(VALUES):
        labels = {"sku": f"sku-{i}", "name": f"shop item {i}"}
        series.append({"series": 'm{sku="%s", name="%s"}' % (labels["sku"], labels["name"]), "values": repr(v)})
        inc = incident(float(v), **labels)
        expected = {k: render_annotation(t, inc) for k, t in PROM_TEMPLATES.items()}
        alerts.append({"exp_labels": labels, "exp_annotations": expected})
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m",
             "tests": [{"interval": "1m", "input_series": series,
                        "alert_rule_test": [{"eval_time": "0m", "alertname": "A", "exp_alerts": alerts}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests))
    done = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_notices_cli_and_api_show_the_rendered_text(write_config, registry, clock, tmp_path, capsys):
    import json

    from routing_helpers import BASE, Shop

    from alertd.http.api import incident_data
    text = BASE.replace("    flapping: false\n", "    flapping: false\n    annotations: {summary: "
                        "\"{{ $labels.host | toUpper }} at {{ $value | humanize }} (limit {{ expected }})\"}\n")
    shop = Shop(write_config, registry, clock, tmp_path, text.replace("group_wait: 30s", "group_wait: 0s"))
    try:
        shop.feed({"a": 95123})
        (row,) = shop.rows()
        (sent,) = json.loads(row["payload"])["incidents"]
        assert sent["annotations"]["summary"] == "A at 95.12k (limit <= 90)"
        assert main(["incidents", "show", "1", "--store", str(shop.path)]) == 0
        assert "summary      A at 95.12k (limit <= 90)" in capsys.readouterr().out
        assert main(["incidents", "show", "1", "--json", "--store", str(shop.path)]) == 0
        assert json.loads(capsys.readouterr().out)["incident"]["annotations"]["summary"] == "A at 95.12k (limit <= 90)"
        assert incident_data(shop.store.incidents.get(1))["annotations"]["summary"] == "A at 95.12k (limit <= 90)"
        # the store keeps the template: a later value renders afresh
        assert "{{ $labels.host | toUpper }}" in shop.store.incidents.get(1).annotations["summary"]
    finally:
        shop.close()
