"""The NAB scorer on hand-made cases whose answers are worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alertd.backtest import nab
from alertd.backtest.nab import PROFILES, LabelledFile, best_threshold, probation_rows, score_corpus, sigmoid

STANDARD, LOW_FP, LOW_FN = PROFILES
N = 200  # probation: 30 rows
WINDOW = (100, 109)  # width 10


def file_with(detections: dict[int, float], windows=(WINDOW,), n=N) -> LabelledFile:
    scores = np.zeros(n)
    for row, score in detections.items():
        scores[row] = score
    return LabelledFile("f.csv", scores, tuple(windows))


def sig(y):
    return 2 / (1 + math.exp(5 * y)) - 1


def test_scaled_sigmoid_and_probation():
    assert sigmoid(0.0) == pytest.approx(0.0)
    assert sigmoid(-1.0) == pytest.approx(sig(-1.0))
    assert sigmoid(3.5) == -1.0  # beyond y = 3 it is exactly -1
    assert probation_rows(200) == 30 and probation_rows(100_000) == 750 and probation_rows(6) == 0


def test_detection_at_the_left_edge_earns_the_full_reward():
    result = score_corpus([file_with({100: 1.0})], 0.5)
    assert result.raw == pytest.approx(1.0)
    assert result.score == pytest.approx(100.0)
    assert (result.tp, result.fn, result.fp) == (1, 0, 0)


def test_a_missed_window_costs_fn_and_scores_zero():
    result = score_corpus([file_with({})], 0.5)
    assert result.raw == -1.0 and result.score == pytest.approx(0.0)
    assert score_corpus([file_with({})], 0.5, LOW_FN).raw == -2.0


def test_later_detections_in_a_window_earn_less_and_only_the_earliest_counts():
    right_edge = score_corpus([file_with({109: 1.0})], 0.5).raw
    assert right_edge == pytest.approx(sig(-0.1) / sig(-1.0))  # y = -(109 - 109 + 1) / 10
    middle_and_edge = score_corpus([file_with({105: 1.0, 109: 1.0})], 0.5)
    assert middle_and_edge.raw == pytest.approx(sig(-0.5) / sig(-1.0))
    assert middle_and_edge.tp == 1 and middle_and_edge.fp == 0


def test_false_positives_before_and_after_a_window():
    before = score_corpus([file_with({50: 1.0})], 0.5)  # no window before it: full cost
    assert before.raw == pytest.approx(-1.0 - 0.11) and before.fp == 1
    assert before.score == pytest.approx(100 * (-1.11 + 1) / 2)
    after = score_corpus([file_with({100: 1.0, 118: 1.0})], 0.5)  # y = |118 - 109| / 9 = 1
    assert after.raw == pytest.approx(1.0 + 0.11 * sig(1.0))
    just_after = score_corpus([file_with({100: 1.0, 110: 1.0})], 0.5).raw
    assert just_after > after.raw  # cheaper right after the window
    assert score_corpus([file_with({50: 1.0})], 0.5, LOW_FP).raw == pytest.approx(-1.22)


def test_probation_detections_are_ignored_and_threshold_is_inclusive():
    result = score_corpus([file_with({10: 1.0, 100: 0.7})], 0.7)
    assert result.fp == 0 and result.raw == pytest.approx(1.0)
    assert score_corpus([file_with({100: 0.69})], 0.7).raw == -1.0


def test_normalisation_sums_over_files():
    files = [file_with({100: 1.0}), file_with({})]
    result = score_corpus(files, 0.5)
    assert result.raw == pytest.approx(0.0) and result.score == pytest.approx(50.0)
    no_windows = LabelledFile("quiet.csv", np.r_[np.zeros(150), 1.0, np.zeros(49)], ())
    assert score_corpus([no_windows, file_with({100: 1.0})], 0.5).raw == pytest.approx(1.0 - 0.11)


def test_best_threshold_picks_the_score_that_maximises():
    f = file_with({50: 0.9, 105: 0.8})  # at 0.9 only the false positive; at 0.8 both
    best = best_threshold([f])
    assert best.threshold == pytest.approx(0.8)
    assert best.raw == pytest.approx(sig(-0.5) / sig(-1.0) - 0.11)
    assert best.score == pytest.approx(score_corpus([f], 0.8).score)


def test_best_threshold_equals_a_brute_force_sweep():
    rng = np.random.default_rng(3)
    files = []
    for k in range(4):
        n = int(rng.integers(150, 400))
        scores = np.round(rng.random(n), 2)  # ties on purpose
        left = int(rng.integers(60, n - 40))
        files.append(LabelledFile(f"f{k}.csv", scores, ((left, left + 20),)))
    for profile in PROFILES:
        brute = max(score_corpus(files, t, profile).score for t in np.unique(np.concatenate([f.scores for f in files])))
        assert best_threshold(files, profile).score == pytest.approx(max(brute, 0.0))


def test_windows_to_rows_and_reading_the_layout(tmp_path):
    ts = np.arange(10) * 60.0
    assert nab.windows_to_rows(ts, [(60.0, 180.0), (1000.0, 2000.0)]) == ((1, 3),)
    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.csv").write_text("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,x\n")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(
        {"cat/a.csv": [["2014-04-01 00:00:00.000000", "2014-04-01 00:05:00.000000"]]}))
    assert [name for name, _ in nab.corpus_files(tmp_path)] == ["cat/a.csv"]
    ts, values, texts = nab.read_series_csv(data / "a.csv")
    assert texts == ["2014-04-01 00:00:00", "2014-04-01 00:05:00"] and np.isnan(values[1])
    windows = nab.read_windows(tmp_path / "labels" / "combined_windows.json")
    assert nab.windows_to_rows(ts, windows["cat/a.csv"]) == ((0, 1),)


def test_unreadable_timestamps_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2014-04-01 00:00:00,1\nyesterday,2\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: 'yesterday' is not a timestamp"):
        nab.read_series_csv(bad)
    (tmp_path / "nohead.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="header with timestamp and value"):
        nab.read_series_csv(tmp_path / "nohead.csv")
