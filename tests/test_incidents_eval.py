"""Incident-level evaluation (alertd/backtest/incidents_eval.py) on hand-built labels and pages."""

from __future__ import annotations

import pytest

from alertd.backtest.incidents_eval import Page, evaluate
from alertd.matchers import parse_selector

H, M = 3600.0, 60.0
EU, US = 'orders_per_minute{region="eu"}', 'orders_per_minute{region="us"}'
PAY, ERR = 'payment_success_ratio{provider="stripe"}', "http_5xx_rate"


def effect(series, start, end, role="primary"):
    metric, _, rest = series.partition("{")
    labels = dict(part.split("=") for part in rest.rstrip("}").split(",")) if rest else {}
    return {"series": series, "metric": metric, "labels": {k: v.strip('"') for k, v in labels.items()},
            "role": role, "start": start, "end": end}


def label(id_, kind, start, end, *effects):
    return {"id": id_, "kind": kind, "start": start, "end": end, "note": kind,
            "effects": list(effects) or [effect(EU, start, end)]}


# Two drops in eu (Tue 03:00 for 45m, Thu 19:30 for 30m), a payment outage that also moves
# eu orders (secondary), and a drop in us nobody watches below.
LABELS = [
    label("01-traffic_drop", "traffic_drop", 27 * H, 27 * H + 45 * M),
    label("02-payment_outage", "payment_outage", 40 * H, 40 * H + 20 * M,
          effect(PAY, 40 * H, 40 * H + 20 * M), effect(EU, 40 * H, 40 * H + 20 * M, "secondary")),
    label("03-traffic_drop", "traffic_drop", 67.5 * H, 68 * H),
    label("04-traffic_drop", "traffic_drop", 80 * H, 80 * H + 15 * M, effect(US, 80 * H, 80 * H + 15 * M)),
]
ORDERS_EU = ("orders_eu", parse_selector('orders_per_minute{region="eu"}'))


def test_a_rule_that_fires_exactly_on_its_labels_scores_one_and_one():
    pages = [Page("orders_eu", EU, 27 * H, 27 * H + 45 * M), Page("orders_eu", EU, 67.5 * H, 68 * H)]
    (report,) = evaluate([ORDERS_EU], LABELS, pages).rules
    assert [o.label for o in report.labels] == ["01-traffic_drop", "03-traffic_drop"]  # not 02 (secondary)
    assert (report.precision, report.recall) == (1.0, 1.0)
    assert report.times_to_fire == [0.0, 0.0] and report.false_pages == []


def test_a_rule_that_pages_every_evening_peak_has_low_precision_and_names_each_false_page():
    evenings = [Page("orders_eu", EU, (24 * d + 19) * H, (24 * d + 21) * H, 131.0) for d in range(7)]
    (report,) = evaluate([ORDERS_EU], LABELS, evenings).rules
    # Thursday's page fired at 19:00, before the 19:30 drop: it was already firing, it fired for
    # the peak; the drop is missed and the page is false like the others.
    assert report.pages == 7 and len(report.false_pages) == 7
    assert report.precision == 0.0 and report.recall == 0.0
    thursday = report.false_pages[2]
    assert thursday.page.fired_at == 67 * H and thursday.nearest == "03-traffic_drop starts 30 min later"
    assert report.false_pages[1].nearest == "02-payment_outage ended 2.7 h before"  # (its secondary effect)
    # one page inside a drop makes it found and the page true: precision 1/8
    (report,) = evaluate([ORDERS_EU], LABELS, [*evenings, Page("orders_eu", EU, 67.6 * H)]).rules
    assert report.precision == pytest.approx(1 / 8) and report.recall == 0.5
    assert report.labels[1].time_to_fire == pytest.approx(0.1 * H)


def test_tolerance_after_the_end_and_lead_before_the_start():
    late = Page("orders_eu", EU, 27 * H + 55 * M)  # 10 minutes after the drop ended
    assert evaluate([ORDERS_EU], LABELS, [late], tolerance=15 * M).rules[0].found == 1
    assert evaluate([ORDERS_EU], LABELS, [late], tolerance=5 * M).rules[0].found == 0
    early = Page("orders_eu", EU, 27 * H - 30 * M)  # an early warning half an hour ahead
    assert evaluate([ORDERS_EU], LABELS, [early]).rules[0].found == 0
    (report,) = evaluate([ORDERS_EU], LABELS, [early], leads={"orders_eu": 45 * M}).rules
    assert report.found == 1 and report.labels[0].time_to_fire == -30 * M
    assert evaluate([ORDERS_EU], LABELS, [early], lead=45 * M).rules[0].found == 1


def test_secondary_series_explain_pages_but_are_not_required():
    during_outage = Page("orders_eu", EU, 40 * H + 5 * M, 40 * H + 30 * M)
    (report,) = evaluate([ORDERS_EU], LABELS, [during_outage]).rules
    assert (report.pages, report.true_pages, report.explained_pages, len(report.false_pages)) == (1, 0, 1, 0)
    assert report.precision == 1.0 and report.recall == 0.0  # the two drops are still missed


def test_every_refire_is_a_page_and_the_earliest_gives_the_time_to_fire():
    flapping = [Page("orders_eu", EU, 27 * H + k * 10 * M, 27 * H + k * 10 * M + 5 * M) for k in (1, 2, 3)]
    (report,) = evaluate([ORDERS_EU], LABELS, flapping).rules
    (first, _) = report.labels
    assert first.found and first.pages == 3 and first.time_to_fire == 10 * M
    assert (report.pages, report.true_pages, report.found) == (3, 3, 1)


def test_rules_answer_for_labels_on_the_series_they_select_and_the_rest_are_unwatched():
    rules = [ORDERS_EU, ("payments", parse_selector('payment_success_ratio{provider=~".+"}')),
             ("errors", parse_selector("http_5xx_rate"))]
    pages = [Page("payments", PAY, 40 * H + 4 * M, 40 * H + 24 * M), Page("errors", ERR, 50 * H, 50 * H + M)]
    result = evaluate(rules, LABELS, pages, series=[effect(EU, 0, 0), effect(US, 0, 0), effect(PAY, 0, 0)])
    eu, pay, err = result.rules
    assert eu.series == [EU] and pay.series == [PAY] and err.series == []
    assert [o.label for o in pay.labels] == ["02-payment_outage"] and pay.labels[0].time_to_fire == 4 * M
    assert (pay.precision, pay.recall) == (1.0, 1.0)
    assert err.labels == [] and err.recall is None and err.precision == 0.0 and err.false_pages[0].nearest is None
    assert [lab["id"] for lab in result.unwatched] == ["04-traffic_drop"]
    totals = result.totals()
    assert (totals["labels"], totals["found"], totals["pages"], totals["false_pages"]) == (3, 1, 2, 1)
    assert totals["precision"] == 0.5 and totals["recall"] == pytest.approx(1 / 3)


def test_a_page_still_firing_at_the_end_and_the_json_form():
    pages = [Page("orders_eu", EU, 67.5 * H + 2 * M, None, 40.0, "orders_per_minute 40, expected 90-150")]
    result = evaluate([ORDERS_EU], LABELS, pages)
    doc = result.as_dict()
    (rule,) = doc["rules"]
    assert rule["found"] == 1 and rule["missed"] == 1 and rule["time_to_fire_median"] == 2 * M
    assert rule["outcomes"][1]["found"] and doc["overall"]["recall"] == 0.5
    assert doc["tolerance_s"] == 900.0 and doc["unwatched_labels"] == ["02-payment_outage", "04-traffic_drop"]


def test_nothing_to_judge_is_undefined_not_zero():
    (report,) = evaluate([ORDERS_EU], [], []).rules
    assert report.precision is None and report.recall is None
    assert evaluate([ORDERS_EU], [], []).totals()["precision"] is None
