"""The alert stage's batched writes: only changed lifecycle columns, alert states updated in
place, nested transactions on one savepoint name, and caches of what was written that a
rollback voids (so a rolled-back tick can never leave a stale row behind)."""

from __future__ import annotations

import math

import pytest

from alertd.jsontext import dumps
from alertd.model import Incident, Notification
from alertd.store import Store


def _incident(fp="fp1", **kw) -> Incident:
    return Incident(fp, "latency_high", {"host": "a"}, "firing", "warning", 100.0, **kw)


def _row(store, incident_id, *columns):
    return store.db.execute(f"SELECT {', '.join(columns)} FROM incidents WHERE id = ?", [incident_id]).fetchone()


def test_an_update_writes_the_changed_lifecycle_columns_and_leaves_the_others(tmp_path):
    store = Store(tmp_path / "s.db")
    inc = _incident(count=1, reason="first")
    store.incidents.save_many([inc])
    # another writer changes a column the state machine did not change since: it stays
    store.db.execute("UPDATE incidents SET reason = 'edited elsewhere' WHERE id = ?", [inc.id])
    inc.count = 2
    store.incidents.save_many([inc])
    assert _row(store, inc.id, "count", "reason") == (2, "edited elsewhere")
    inc.reason = "second"  # changed by the state machine: written
    store.incidents.save_many([inc])
    assert _row(store, inc.id, "count", "reason") == (2, "second")


def test_an_incident_loaded_from_the_store_is_written_in_full_the_first_time(tmp_path):
    store = Store(tmp_path / "s.db")
    inc = _incident(count=1, reason="r")
    store.incidents.save_many([inc])
    again = Store(tmp_path / "s.db")  # a restart: nothing is known to be written
    loaded = again.incidents.open()[0]
    store.db.execute("UPDATE incidents SET reason = 'stale' WHERE id = ?", [inc.id])
    again.incidents.save_many([loaded])
    assert _row(again, inc.id, "reason") == ("r",)


def test_a_rolled_back_update_is_written_again_by_the_next_save(tmp_path):
    store = Store(tmp_path / "s.db")
    inc = _incident(count=1)
    store.incidents.save_many([inc])
    inc.count = 5
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.incidents.save_many([inc])
            raise RuntimeError("the tick failed after the alert stage wrote")
    assert _row(store, inc.id, "count") == (1,)
    # the same values again: had the store kept believing count=5 was written, it would skip it
    store.incidents.save_many([inc])
    assert _row(store, inc.id, "count") == (5,)


def test_a_resolve_is_written_and_a_resolved_incident_is_never_updated_again(tmp_path):
    store = Store(tmp_path / "s.db")
    inc = _incident(count=1)
    store.incidents.save_many([inc])
    inc.state, inc.resolved_at, inc.resolution = "resolved", 200.0, "cleared"
    store.incidents.save_many([inc])
    assert _row(store, inc.id, "state", "resolved_at", "resolution") == ("resolved", 200.0, "cleared")
    inc.count = 9  # the guard: lifecycle updates never touch a resolved incident
    store.incidents.save_many([inc])
    assert _row(store, inc.id, "count") == (1,)
    assert store.incidents._written == {}


def test_an_incident_resolved_by_hand_is_not_kept_in_the_writers_memory(tmp_path):
    store = Store(tmp_path / "s.db")
    incidents = [_incident(f"fp{i}", count=1) for i in range(30)]
    store.incidents.save_many(incidents)
    for inc in incidents:  # `alertd incidents resolve`, the API, a rule removed by a reload
        store.incidents.resolve_by_hand(inc.id, 300.0, "ops")
    assert _row(store, incidents[0].id, "state", "resolution") == ("resolved", "manual")
    assert store.incidents._written == {}  # the state machine never saves them again: nothing to compare with


def test_alert_states_are_inserted_then_updated_in_place_and_a_rollback_is_repaired(tmp_path):
    store = Store(tmp_path / "s.db")
    states = store.alert_states
    states.write([("fp1", "r", 1, 1, 0, 10.0)], [])
    states.write([("fp1", "r", 3, 2, 1, 11.0)], [])
    assert list(store.db.execute("SELECT fingerprint, history, evaluations, flapping, updated_at FROM alert_states")) \
        == [("fp1", 3, 2, 1, 11.0)]
    with pytest.raises(RuntimeError):
        with store.atomic():
            states.write([("fp2", "r", 1, 1, 0, 12.0)], [])
            raise RuntimeError("rolled back")
    assert "fp2" not in states._stored
    states.write([("fp2", "r", 1, 1, 0, 13.0)], [])  # an UPDATE would find no row: it is inserted
    assert dict(store.db.execute("SELECT fingerprint, updated_at FROM alert_states")) == {"fp1": 11.0, "fp2": 13.0}
    states.write([], ["fp1"])
    assert [r[0] for r in states.load()] == ["fp2"]


def test_nested_blocks_roll_back_only_their_own_writes(tmp_path):
    store = Store(tmp_path / "s.db")
    with store.atomic():
        store.set_kv("outer", 1)
        with pytest.raises(ValueError):
            with store.db.atomic():
                store.set_kv("inner", 1)
                with store.db.atomic():
                    store.set_kv("innermost", 1)
                raise ValueError("inner block fails")
        with store.db.atomic():
            store.set_kv("second", 1)
    assert [store.get_kv(k) for k in ("outer", "inner", "innermost", "second")] == [1, None, None, 1]


def test_dumps_writes_what_json_reads_back():
    import json

    note = Notification("oncall", "firing", "k:firing:1", (_incident(count=3, last_value=math.nan),), "t", "x", 1.0,
                        "g", {"b": "2", "a": "1"})
    back = json.loads(dumps(note))
    assert back == {**json.loads(json.dumps(note.as_dict(), allow_nan=True).replace("NaN", "null"))}
    assert back["incidents"][0]["last_value"] is None  # JSON has no NaN
    assert dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
    assert json.loads(dumps({"n": 2 ** 70})) == {"n": 2 ** 70}  # beyond orjson's integers: json writes it
    assert json.loads(dumps({"x": [1.5, "é"]})) == {"x": [1.5, "é"]}


def test_a_reader_on_the_stores_own_connection_leaves_no_rollback_hooks_behind():
    store = Store(":memory:")
    hooks = len(store.db.on_rollback)
    for _ in range(3):  # a page request's reader, on an in-memory store's shared connection
        with store.reader() as reader:
            assert reader.db is store.db
    assert len(store.db.on_rollback) == hooks
    store.close()
