"""The paths issue 20 changed for 100,000 series (docs/benchmarks.md, "100,000 series on one
instance"): what they return must not change with them."""

from __future__ import annotations

import numpy as np

from alertd.detect.surprise import Core, SurpriseState
from alertd.model import Batch, Sample, Scores, Status, Verdict, make_labels
from alertd.store import Store


def _sample(host: str, ts: float, value: float) -> Sample:
    return Sample("cpu", make_labels({"host": host}), float(ts), float(value))


def test_recent_with_a_limit_far_above_the_history_returns_what_is_there_oldest_first():
    store = Store()
    with store.atomic():
        for t in range(150):  # more than the arrays' first width (64): they must grow
            store.samples.append([_sample(h, t, t * 10 + i) for i, h in enumerate("abc")], "src")
        store.samples.append([_sample("d", 149, 5.0)], "src")
    keys = ['cpu{host="a"}', 'cpu{host="c"}', 'cpu{host="d"}']
    got = store.samples.recent(keys, 10_080, source="src")
    assert list(got[keys[0]][0]) == list(range(150)) and list(got[keys[0]][1]) == [t * 10 for t in range(150)]
    assert list(got[keys[1]][1]) == [t * 10 + 2 for t in range(150)] and got[keys[1]][2] == 150
    assert list(got[keys[2]][0]) == [149] and list(got[keys[2]][1]) == [5.0]
    few = store.samples.recent(keys, 3, before=100, source="src")
    assert list(few[keys[0]][0]) == [97, 98, 99]


def test_last_poll_times_are_written_for_runs_of_ids_and_only_for_them():
    store = Store()
    hosts = [f"h{i}" for i in range(10)]
    with store.atomic():
        store.samples.append([_sample(h, 0, 1.0) for h in hosts], "src", now=0.0)
    index = store.samples.index
    ids = index.of("src")
    polled = np.array(sorted(ids[f'cpu{{host="{h}"}}'] for h in hosts if h not in ("h3", "h4", "h8")))
    with store.atomic():
        index.polled(polled, 1000.0)
    last = dict(store.db.execute("SELECT key, last_ts FROM series").fetchall())
    for h in hosts:
        assert last[f'cpu{{host="{h}"}}'] == (0.0 if h in ("h3", "h4", "h8") else 1000.0), h


def test_a_verdict_without_explanation_differs_only_by_its_empty_reason():
    batch = Batch(keys=['cpu{host="a"}'], labels=[make_labels({"host": "a"})], ts=np.array([60.0]),
                  values=np.array([95.0]), history=np.zeros((1, 0)), history_ts=np.zeros((1, 0)),
                  seen=np.array([10]), was_anomalous=np.array([False]))
    scores = Scores(np.array([Status.OK], dtype=np.int8), np.array([0.1]), np.array([0.2]),
                    np.array([40.0]), np.array([120.0]), ["for 14:00 UTC"])
    full = Verdict.from_scores("r", batch, scores, 0, "cpu")
    bare = Verdict.from_scores("r", batch, scores, 0, "cpu", explain=False)
    assert full.reason == "cpu 95, expected 40-120 for 14:00 UTC, score 0.100 (threshold 0.200)"
    assert bare.reason == "" and bare == Verdict(**{**full.__dict__, "reason": ""})
    assert bare.status is Status.OK


def test_the_surprise_state_stays_column_major_and_a_subset_update_equals_the_whole():
    rng = np.random.default_rng(3)
    whole, parts = SurpriseState(0, Core()), SurpriseState(0, Core())
    whole.grow(40)
    parts.grow(25)
    parts.grow(40)  # grown twice: still one contiguous run per field
    assert whole.st.flags["F_CONTIGUOUS"] and parts.st.flags["F_CONTIGUOUS"]
    level = rng.uniform(50, 150, 40)
    for j in range(30):
        x, t = level + rng.normal(0, 3, 40), np.full(40, 1.79e9 + 10.0 * j)
        a = whole.update(x, t)
        order = rng.permutation(40)  # the same points, in two gathers of rows in another order
        b1 = parts.update(x[order[:17]], t[order[:17]], order[:17])
        b2 = parts.update(x[order[17:]], t[order[17:]], order[17:])
        score = np.empty(40)
        score[order[:17]], score[order[17:]] = b1.score, b2.score
        np.testing.assert_array_equal(score, a.score)
    np.testing.assert_array_equal(whole.st, parts.st)
    np.testing.assert_array_equal(whole.profile, parts.profile)
    assert parts.st.flags["F_CONTIGUOUS"]
