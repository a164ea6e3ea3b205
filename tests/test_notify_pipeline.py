"""From a detector's verdict to the words in a notice: the expected range travels along."""

from __future__ import annotations

import json

import sqlite_utils

from alertd.config.load import load_config
from alertd.engine.tick import Engine
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Incident, Notification, Sample, make_labels
from alertd.render.renderer import Renderer, TemplateParams, plain_text
from alertd.store import Store
from alertd.store.migrations import migrations

CONFIG = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - name: queue_backlog
    source: app
    series: queue_depth{queue=~".+"}
    detector: {type: test_above, limit: 300}
    severity: warning
    annotations: {summary: "Queue {{ labels.queue }} holds {{ value }} jobs"}
receivers:
  ops: [{type: console}]
routes:
  receiver: ops
  group_wait: 0s   # the notice is queued as soon as the tick fires
"""


def test_the_firing_notice_shows_value_range_and_score_from_the_verdict(write_config, registry, clock, tmp_path):
    config = load_config(write_config(CONFIG), registry, environ={})
    store = Store(tmp_path / "p.db")
    engine = Engine(config, registry, store, clock, Metrics(), get_logger())
    sample = Sample("queue_depth", make_labels({"queue": "{{ 7*7 }}"}), clock.now() - 60, 512.0)
    result = engine.ingest("app", [sample])
    (transition,) = result.transitions
    engine.router.flush_due()  # the group timer's flush, woken by the tick (group_wait 0)
    inc = transition.incident
    assert (inc.expected_low, inc.expected_high, inc.score, inc.threshold) == (None, 300.0, 1.0, 0.5)
    (row,) = store.outbox.rows()
    note = Notification.from_dict(json.loads(row["payload"]))
    text = plain_text(note, Renderer(TemplateParams(timezone="UTC")))
    assert text.splitlines()[0] == "[FIRING] queue_backlog queue={{ 7*7 }}"
    assert "Queue {{ 7*7 }} holds 512 jobs" in text  # a label value is data, even in an annotation
    assert "Value:      512 (expected <= 300)" in text and "Score:      1.000 (threshold 0.5)" in text
    assert "Since:      " in text and "(1m ago)" in text
    (saved,) = store.incidents.list(include_closed=True)
    assert (saved.expected_high, saved.score, saved.threshold) == (300.0, 1.0, 0.5)
    store.close()


def test_a_store_from_before_the_range_columns_is_migrated(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(path)
    migrations.apply(db, stop_before="m002_incident_expected_range")
    db["incidents"].insert({"fingerprint": "fp", "rule": "r", "labels": "{}", "state": "firing",
                            "severity": "warning", "started_at": 1.0, "annotations": "{}"})
    db.close()
    store = Store(path)
    (old,) = store.incidents.open()
    assert old.expected_low is None and old.score is None
    old.expected_low, old.score = 0.5, 0.9
    store.incidents.save(old)
    assert store.incidents.get(old.id).expected_low == 0.5
    assert isinstance(store.incidents.save(Incident("fp2", "r", {}, "pending", "info", 2.0)).id, int)
    store.close()
