"""Fitted models in the store: pickled in pieces (out-of-band buffers, incremental blob I/O),
read back with their arrays as views, plain pickles of older stores and of plugins' own
`dump_model` still load, and a save that fails part-way leaves the previous model."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from alertd.base import Detector, TrainingSet, stored_form
from alertd.config.load import load_config
from alertd.default_plugins.detectors.surprise import SavedState, Surprise
from alertd.engine.tick import Engine
from alertd.engine.training import Trainer
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.model_blob import ALIGN, CHUNK, Pieces, dump_pieces, is_pieces, split
from alertd.store import Store
from alertd.store.fitted_models import FORMAT_BYTES, FORMAT_PIECES, StoredModel
from alertd.testing import make_context, params_of

ROOT = Path(__file__).resolve().parent.parent


def _row(blob, rule="r") -> StoredModel:
    return StoredModel(rule, "surprise", "v1", 1.0, 2.0, 3, 4, 0.5, len(blob), blob, '{"a": 1}')


def _state(n: int, seed: int = 0) -> SavedState:
    """A surprise model of n series, its arrays as big as the real ones (2 KiB a series)."""
    rng = np.random.default_rng(seed)
    st = np.asfortranarray(rng.normal(size=(n, 28)))
    profile = rng.normal(size=(n, 456)).astype(np.float32)
    profile[:, ::7] = np.nan
    return SavedState([f"s{i}" for i in range(n)], st, profile, fitted_at=123.0)


def _same(a: SavedState, b: SavedState) -> bool:
    return (a.keys == b.keys and a.fitted_at == b.fitted_at and np.array_equal(a.st, b.st)
            and np.array_equal(a.profile, b.profile, equal_nan=True))


def _format(store: Store, rule: str = "r") -> int:
    return store.db.execute("SELECT format FROM models WHERE rule = ?", [rule]).fetchone()[0]


def test_a_model_with_big_arrays_is_stored_without_copies_and_loads_as_writable_aligned_views(tmp_path):
    det = Surprise(params_of(Surprise, {}), make_context())
    model = _state(20_000)  # 39 MiB: several pieces of at most CHUNK bytes
    blob = stored_form(det, model)
    assert isinstance(blob, Pieces) and len(blob) > 4 * CHUNK
    # the pieces are the model's own memory (no pickled copy of the arrays)
    assert any(np.shares_memory(model.profile, np.frombuffer(part, np.uint8)) for part in blob.parts)
    assert any(np.shares_memory(model.st, np.frombuffer(part, np.uint8)) for part in blob.parts)
    assert all(len(piece) <= CHUNK for piece in blob)
    store = Store(tmp_path / "a.db")
    store.models.save(_row(blob))
    store.close()

    store = Store(tmp_path / "a.db")
    stored = store.models.load("r")
    assert _format(store) == FORMAT_PIECES and stored.size == len(blob) == len(stored.blob)
    assert (stored.rule, stored.detector, stored.version, stored.fitted_at, stored.saved_at, stored.series,
            stored.train_rows, stored.fit_seconds, stored.params) == ("r", "surprise", "v1", 1.0, 2.0, 3, 4, 0.5,
                                                                       '{"a": 1}')
    assert isinstance(stored.blob, bytearray) and bytes(stored.blob) == blob.tobytes()
    loaded = det.load_model(stored.blob)
    assert _same(loaded, model)
    start = np.frombuffer(stored.blob, np.uint8)
    for arr in (loaded.st, loaded.profile):
        assert np.shares_memory(arr, start)  # views of the bytes read
        assert arr.flags.writeable and (arr.ctypes.data - start.ctypes.data) % ALIGN == 0
    loaded.profile[0, 0] = 5.0  # a detector may work on its model's arrays
    assert store.models.list()[0]["size"] == len(blob)
    store.close()


def test_small_models_and_models_without_arrays_round_trip():
    for model in ({"mean": np.arange(10.0), "name": "x"}, [1, "two", (3.0,)], _state(3)):
        pieces = dump_pieces(model)
        data, buffers = split(pieces.tobytes())
        assert buffers == []  # small buffers stay in band
        back = pickle.loads(bytes(data))
        if isinstance(model, SavedState):
            assert _same(back, model)
        elif isinstance(model, dict):
            assert np.array_equal(back["mean"], model["mean"]) and back["name"] == "x"
        else:
            assert back == model


def test_a_damaged_blob_in_pieces_says_so():
    blob = dump_pieces(_state(100)).tobytes()
    with pytest.raises(ValueError, match="is truncated"):
        split(blob[:20])
    with pytest.raises(ValueError, match=f"is {len(blob) - 1} bytes where its header says {len(blob)}"):
        split(blob[:-1])


class JsonModels(Detector):
    """A plugin that stores its model as JSON (overrides both hooks, as docs/plugins.md allows)."""

    type_name = "test_json_models"
    trainable = True
    seen: list = []

    def dump_model(self, model) -> bytes:
        return json.dumps({"mean": model["mean"].tolist()}).encode()

    def load_model(self, blob: bytes):
        JsonModels.seen.append(type(blob))
        return {"mean": np.array(json.loads(blob)["mean"])}


class OwnLoader(Detector):
    """A plugin that only overrides `load_model` and reads the default pickle itself."""

    type_name = "test_own_loader"
    trainable = True

    def load_model(self, blob: bytes):
        return pickle.loads(blob)


@pytest.mark.parametrize("cls", [JsonModels, OwnLoader])
def test_a_plugin_that_overrides_a_hook_stores_and_gets_back_its_own_bytes(cls, tmp_path):
    det = cls(None, make_context())
    model = {"mean": np.linspace(0, 1, 50_000)}  # big enough to go out of band, were it pickled in pieces
    blob = stored_form(det, model)
    assert isinstance(blob, bytes) and blob == det.dump_model(model) and not is_pieces(blob)
    store = Store(tmp_path / "a.db")
    store.models.save(_row(blob))
    stored = store.models.load("r")
    assert _format(store) == FORMAT_BYTES and type(stored.blob) is bytes and stored.blob == blob
    assert np.array_equal(det.load_model(stored.blob)["mean"], model["mean"])
    store.close()
    if cls is JsonModels:
        assert JsonModels.seen == [bytes]


def test_a_model_stored_by_an_older_alertd_still_loads(tmp_path):
    """Before pieces, the row was a sqlite-utils upsert of `dump_model`'s plain pickle, format 1."""
    det = Surprise(params_of(Surprise, {}), make_context())
    model = _state(2_000)
    store = Store(tmp_path / "a.db")
    old = dict(_row(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)).__dict__, format=1)
    store.db["models"].upsert(old, pk="rule")
    store.close()
    store = Store(tmp_path / "a.db")
    stored = store.models.load("r")
    assert type(stored.blob) is bytes and stored.blob == old["blob"]
    assert _same(det.load_model(stored.blob), model)
    # the next save replaces it in the new format
    store.models.save(_row(stored_form(det, _state(2_000, seed=1))))
    assert _format(store) == FORMAT_PIECES and _same(det.load_model(store.models.load("r").blob), _state(2_000, 1))
    store.close()


class FailingPieces(Pieces):
    """Pieces whose writing stops after `after` pieces: an exception, or the process killed."""

    def __init__(self, parts, after: int, kill: bool = False):
        super().__init__(parts)
        self.after, self.kill = after, kill

    def __iter__(self):
        for i, piece in enumerate(super().__iter__()):
            if i == self.after:
                if self.kill:
                    os.kill(os.getpid(), signal.SIGKILL)
                raise OSError("disk on fire")
            yield piece


def test_an_error_between_pieces_leaves_the_previous_model_and_a_usable_store(tmp_path):
    det = Surprise(params_of(Surprise, {}), make_context())
    store = Store(tmp_path / "a.db")
    store.models.save(_row(stored_form(det, _state(10_000))))
    new = stored_form(det, _state(10_000, seed=1))
    with pytest.raises(OSError, match="disk on fire"):
        store.models.save(_row(FailingPieces(new.parts, after=2)))
    assert not store.db.conn.in_transaction
    assert _same(det.load_model(store.models.load("r").blob), _state(10_000))
    with store.atomic():  # inside a tick's transaction: only the model's savepoint rolls back
        store.set_kv("tick", 1)
        with pytest.raises(OSError):
            store.models.save(_row(FailingPieces(new.parts, after=1), rule="other"))
    assert store.get_kv("tick") == 1 and store.models.load("other") is None
    store.models.save(_row(new))
    assert _same(det.load_model(store.models.load("r").blob), _state(10_000, seed=1))
    store.close()


def test_a_process_killed_in_the_middle_of_a_save_leaves_the_previous_model(tmp_path):
    path = tmp_path / "a.db"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "tests")!r})
        from test_model_store import FailingPieces, _row, _state
        from alertd.model_blob import dump_pieces
        from alertd.store import Store
        store = Store({str(path)!r})
        store.models.save(_row(dump_pieces(_state(10_000))))
        print("saved", flush=True)
        store.models.save(_row(FailingPieces(dump_pieces(_state(10_000, seed=1)).parts, after=3, kill=True)))
        print("not reached", flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert out.stdout.split() == ["saved"]
    store = Store(path)
    det = Surprise(params_of(Surprise, {}), make_context())
    assert _same(det.load_model(store.models.load("r").blob), _state(10_000))
    store.close()


CONFIG = """\
sources:
  src: {type: test_list, every: 60s}
rules:
  - name: orders
    source: src
    series: orders{region=~".+"}
    detector: {type: surprise, retrain: 1h}
receivers:
  rec: [{type: test_record}]
"""


def test_the_trainer_saves_surprise_in_pieces_and_a_restart_restores_the_same_state(
        write_config, registry, tmp_path, clock):
    config = load_config(write_config(CONFIG), registry, environ={})
    regions = [f"r{i}" for i in range(300)]

    def rig(store):
        engine = Engine(config, registry, store, clock, Metrics(), get_logger())
        trainer = Trainer(engine, store, clock, get_logger(), inline=True)
        trainer.start()
        return engine, trainer

    store = Store(tmp_path / "a.db")
    engine, trainer = rig(store)
    rng = np.random.default_rng(3)
    for _ in range(10):
        clock.advance(60)
        engine.ingest("src", [Sample("orders", make_labels({"region": r}), clock.now(), float(v))
                              for r, v in zip(regions, rng.normal(100, 5, len(regions)))])
        trainer.poll()
    clock.advance(3600)
    trainer.poll()  # the scheduled save
    (st,) = trainer.rules
    assert st.fits == 2 and _format(store, "orders") == FORMAT_PIECES
    live = st.runtime.detector.state
    store.close()

    store = Store(tmp_path / "a.db")
    _, again = rig(store)
    restored = again.rules[0].runtime.detector
    assert len(restored.index) == len(regions) and restored.model_info()["fitted_at"] == clock.now()
    rows = [restored.index[k] for k in st.runtime.detector.index]
    assert np.array_equal(restored.state.st[rows], live.st, equal_nan=True)
    assert np.array_equal(restored.state.profile[rows], live.profile, equal_nan=True)
    store.close()


def test_surprise_dump_model_still_gives_plain_pickle_bytes():
    """`dump_model` itself is unchanged: a caller (or a plugin's super() call) gets bytes."""
    det = Surprise(params_of(Surprise, {}), make_context())
    data = TrainingSet(["a"], [()], [np.array([1.0])], [np.array([2.0])], now=5.0)
    blob = det.dump_model(det.fit(data))
    assert isinstance(blob, bytes) and not is_pieces(blob)
    assert det.load_model(blob).keys == ["a"]
