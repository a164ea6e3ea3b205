"""High availability the Prometheus way, the short version of bench/ha.py.

Two shards of one config, each run by two replicas of the real `alertd run` (same config,
own stores), send to every node of a real three-node Alertmanager cluster gossiping on
loopback; a webhook receiver behind the cluster records every notice. Incidents fire and
resolve on a schedule (a target every replica polls); during the run one replica of each
shard and one Alertmanager node are SIGKILLed at random (seeded) moments and restarted.

No notice may be lost: every incident's firing and resolved notices reach the receiver. The
same run against one replica per shard (same schedule, same Alertmanager kill) gives the
duplicates the cluster makes by itself; both counts are reported. The cluster must still
de-duplicate: fewer duplicates than incidents (three Alertmanager nodes that each notified
would give four per incident, replicas whose alerts differ two; a kill costs one or two).

The rules keep flap detection on (alertd's default): a replica restarted mid-incident must
not call a series flapping because of the evaluations it missed while it was down, which
would hold back a resolve and merge two incidents (alertd/incidents/flapping.py, fill_gap).

Real processes and real timers: the run waits for the schedule, then polls the receiver
(bounded) for the last notices. About three minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import shutil
import sys

import pytest
from daemon_process import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import ha  # noqa: E402

pytestmark = [pytest.mark.alertmanager_cluster, pytest.mark.timeout(900)]  # two runs of minutes
RUN = {"duration": 70, "rules": 8, "period": 20, "active": 7, "rounds": 1, "seed": 7, "nodes": 3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    if not shutil.which(ha.BINARY):
        pytest.fail("prometheus-alertmanager is not installed; run `sh scripts/system-deps.sh` "
                    "(make test does) or apt-get install prometheus-alertmanager")
    return {n: ha.run(replicas_per_shard=n, work=tmp_path_factory.mktemp(f"ha{n}"), **RUN) for n in (2, 1)}


def summary(r: dict) -> str:
    return (f"{r['replicas_per_shard']} replica(s)/shard: {r['incidents']} incidents, {r['notices']} notices, "
            f"{r['duplicate_firing']} duplicate firing, {r['duplicate_resolved']} duplicate resolved, "
            f"kills {r['kills']}, work {r['work']}")


def test_killing_a_replica_of_each_shard_and_an_alertmanager_loses_no_notice(runs, record_property):
    ha_run = runs[2]
    record_property("ha", summary(ha_run))
    killed = {k["killed"] for k in ha_run["kills"]}
    assert any(k.startswith("alertd-0") for k in killed) and any(k.startswith("alertd-1") for k in killed)
    assert any(k.startswith("alertmanager-") for k in killed)
    assert all(ha_run["restarts"][k] >= 1 for k in killed)
    assert ha_run["incidents"] >= 12  # 14 with this schedule
    assert ha_run["lost"] == [], summary(ha_run)
    assert ha_run["stray"] == 0, summary(ha_run)
    assert ha_run["duplicates"] < ha_run["incidents"], summary(ha_run)


def test_one_replica_per_shard_with_the_same_alertmanager_kill_for_comparison(runs, record_property):
    one, two = runs[1], runs[2]
    record_property("one_replica", summary(one))
    print(f"\n{summary(two)}\n{summary(one)}")
    assert [k for k in one["kills"] if k["killed"].startswith("alertd")] == []
    assert [(k["planned"], k["killed"]) for k in one["kills"]] == [
        (k["planned"], k["killed"]) for k in two["kills"] if k["killed"].startswith("alertmanager")]
    assert one["incidents"] == two["incidents"]
    assert one["lost"] == [], summary(one)
    assert one["duplicates"] < one["incidents"], summary(one)


def test_the_judge_finds_a_lost_notice_and_counts_duplicates():
    incidents = [ha.Incident("r1", 10, 17), ha.Incident("r1", 30, 37), ha.Incident("r2", 12, 19)]
    notices = [ha.Notice(11, "r1", "firing", ""), ha.Notice(19, "r1", "resolved", ""),
               ha.Notice(21, "r1", "firing", ""), ha.Notice(23, "r1", "resolved", ""),  # a duplicate pair
               ha.Notice(31, "r1", "firing", ""), ha.Notice(39, "r1", "resolved", ""),
               ha.Notice(13, "r2", "firing", "")]  # r2's resolve never came
    verdict = ha.judge(incidents, notices)
    assert verdict["lost"] == [{"rule": "r2", "start": 12, "missing": "resolved"}]
    assert (verdict["duplicate_firing"], verdict["duplicate_resolved"], verdict["duplicates"]) == (1, 1, 2)
    assert not ha.complete(incidents, notices)
    assert ha.complete(incidents, notices + [ha.Notice(20, "r2", "resolved", "")])
