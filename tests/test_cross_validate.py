"""`alertd backtest --nab DIR [DIR...] --cross-validate`: folds read from each corpus's README,
the threshold chosen without the held-out fold, the held-out fold scored at it by NAB's own
scorer, per-file scores cached."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from detect_data import daily, write_csv

from alertd.backtest import cross_validate as cv
from alertd.backtest import nab
from alertd.backtest.rules import BacktestError
from alertd.cli.entry import main

README = """# A corpus

## Cross-validation folds

| fold | {cats}files | windows |
|---|---|{sep}---:|
{rows}
"""


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000000")


def _corpus(root, categories: dict[str, str], seed: int, joined: bool):
    """A NAB-layout corpus: per category two files of 3 days, one with a drop; README folds."""
    labels, k = {}, seed
    for cat in categories:
        for j in range(2):
            ts, v = daily(days=3, step=600, seed=k)
            k += 1
            windows = []
            if j == 0:
                i = 300 + 3 * (k % 20)
                v[i:i + 6] *= 0.2
                windows = [[_stamp(ts[i - 10]), _stamp(ts[i + 10])]]
            (root / "data" / cat).mkdir(parents=True, exist_ok=True)
            write_csv(root / "data" / cat / f"f{j}.csv", ts, v)
            labels[f"{cat}/f{j}.csv"] = windows
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    by_fold: dict[str, list[str]] = {}
    for cat, fold in categories.items():
        by_fold.setdefault(fold, []).append(cat)
    if joined:
        rows = "\n".join(f"| {f} | {' + '.join(c)} | 2 | 1 |" for f, c in by_fold.items())
        text = README.format(cats="categories | ", sep="---|", rows=rows)
    else:
        rows = "\n".join(f"| {f} | 2 | 1 |" for f in by_fold)
        text = README.format(cats="", sep="", rows=rows)
    (root / "README.md").write_text(text)


@pytest.fixture
def corpora(tmp_path):
    a, b = tmp_path / "corpus-a", tmp_path / "corpus-b"
    _corpus(a, {"catA": "one", "catB": "one", "catC": "two"}, 0, joined=True)
    _corpus(b, {"dom1": "dom1", "dom2": "dom2"}, 20, joined=False)
    return a, b


def test_folds_come_from_the_readme_tables(corpora):
    a, b = corpora
    assert cv.read_folds(a) == {"catA": "one", "catB": "one", "catC": "two"}
    assert cv.read_folds(b) == {"dom1": "dom1", "dom2": "dom2"}
    (b / "README.md").write_text("# no folds here\n")
    with pytest.raises(BacktestError, match="no 'Cross-validation folds' table"):
        cv.load([a, b])


def test_each_fold_is_scored_at_the_threshold_chosen_without_it(corpora, tmp_path, capsys):
    a, b = corpora
    cache = tmp_path / "cache"
    assert main(["backtest", "--nab", str(a), str(b), "--cross-validate", "--json", "--cache", str(cache)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["fold"] for f in out["folds"]] == ["one", "two", "dom1", "dom2"]
    assert out["detector"] == "surprise" and len(list(cache.glob("*.npy"))) == 10
    files = cv.load([a, b])
    from alertd.backtest.rules import rule_spec
    scores, quiets, _ = cv.file_scores(rule_spec(None, None, None), files, cache)
    sw = cv.sweep(scores, quiets, files)
    for fold in out["folds"]:
        train = np.array([i for i, f in enumerate(files) if f.fold != fold["fold"]])
        test = [i for i, f in enumerate(files) if f.fold == fold["fold"]]
        theta, _ = cv.choose(sw, train)
        assert fold["theta"] == theta
        from alertd.detect.surprise_run import events
        ref = nab.score_corpus([nab.LabelledFile(files[i].name, events(scores[i], theta, quiets[i]).astype(float),
                                                 files[i].windows) for i in test], 0.5)
        assert fold["score"] == round(ref.score, 2)
    assert out["mean"] == pytest.approx(np.mean([f["score"] for f in out["folds"]]), abs=0.01)
    assert set(out["by_corpus"]) == {"corpus-a", "corpus-b"}
    assert out["frozen_theta"] == float(f"{np.median([f['theta'] for f in out['folds']]):.4g}")
    # text output, from the cache (no new files)
    assert main(["backtest", "--nab", str(a), str(b), "--cross-validate", "--cache", str(cache)]) == 0
    text = capsys.readouterr().out
    assert "mean over 4 folds" in text and "frozen threshold" in text
    assert len(list(cache.glob("*.npy"))) == 10


def test_bad_invocations_get_one_sentence(corpora, tmp_path, capsys):
    a, b = corpora
    assert main(["backtest", "--nab", str(a), str(b)]) != 0
    assert "several with --cross-validate" in capsys.readouterr().err
    assert main(["backtest", "--nab", str(tmp_path / "nothing"), "--cross-validate"]) != 0
    assert "has no data/ folder" in capsys.readouterr().err
