"""Finished trials written in one transaction (`hyperseq.tracking.bulk`, `Store.write_finished`)
read back through `MlflowClient` exactly like the same trials written by MLflow's own calls,
on a real sqlite store; and `TrialRecorder` holds short trials for that write, opening long
ones while they run (its writer faked: only what it queues is checked)."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hyperseq.tracking import recorder as R
from hyperseq.tracking import tags as T
from hyperseq.tracking.store import FinishedTrial, Store, open_store

CONFIG = {"cell": "lstm", "layers": 2, "lr": 0.003, "dropout": 0.25, "long": "x" * 7000}


def _trial(trial_id: str, status: str = "FINISHED", t0: int = 1_790_000_000_000) -> FinishedTrial:
    return FinishedTrial(trial_id, CONFIG, t0, t0 + 5000, status, [
        ({"val_loss": 2.0, "reward": -2.0, "diverged": False, "nan": math.nan, "note": "x"}, 1,
         {"hyperseq.device": "cpu", "hyperseq.rung": "1"}, t0 + 1000),
        ({"val_loss": 1.5, "reward": -1.5, "inf": math.inf}, 2, {"hyperseq.rung": "2"}, t0 + 2000),
        ({"val_loss": 1.5, "reward": -1.5}, 2, {}, t0 + 2000),                 # a duplicate point
        ({"val_loss": 1.7, "reward": -1.7}, 2, {}, t0 + 1500),                 # older, same step
    ], {T.TAG_STOPPED: "true", "hyperseq.rung": "final"})


def _seen(store: Store, run: Any) -> dict[str, Any]:
    """Everything MLflow shows of a run, its id taken out."""
    run_id = run.info.run_id
    histories = {k: sorted((m.step, m.timestamp, m.value) for m in store.client.get_metric_history(run_id, k))
                 for k in run.data.metrics}
    info = {k: v for k, v in dict(run.info).items() if k != "run_id"}
    info["artifact_uri"] = info["artifact_uri"].replace(run_id, "<id>")
    return {"info": info, "tags": run.data.tags, "params": run.data.params, "metrics": run.data.metrics,
            "histories": histories, "run_name": run.info.run_name}


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.mark.slow
def test_a_bulk_written_run_reads_back_like_one_written_by_mlflows_calls(store: Store, monkeypatch) -> None:
    exp = store.ensure()
    one_by_one, _ = store.start_job("calls", {}, {})
    bulk, _ = store.start_job("bulk", {}, {})
    trials = [_trial("t_00001"), _trial("t_00002", "FAILED")]
    Store.write_finished(store, exp, one_by_one, "calls", trials)          # MLflow's own calls
    monkeypatch.setattr(Store, "write_finished", None)                     # no fallback below
    store.write_finished(exp, bulk, "bulk", trials)
    by_calls = {r.info.run_name: r for r in store.trial_runs(one_by_one)}
    by_bulk = {r.info.run_name: r for r in store.trial_runs(bulk)}
    assert sorted(by_bulk) == sorted(by_calls) == ["t_00001", "t_00002"]
    for name, run in by_bulk.items():
        seen = _seen(store, store.get_run(run.info.run_id))
        expected = _seen(store, store.get_run(by_calls[name].info.run_id))
        for seen_or_expected in (seen, expected):
            seen_or_expected["tags"] = {k: v for k, v in seen_or_expected["tags"].items() if k != T.PARENT}
            seen_or_expected["tags"].pop(T.TAG_JOB)
        assert seen == expected
    run = store.get_run(by_bulk["t_00001"].info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[T.PARENT] == bulk
    assert run.data.metrics == {"val_loss": 1.5, "reward": -1.5, "diverged": 0.0}
    assert run.data.tags["hyperseq.rung"] == "final" and len(run.data.params["long"]) == 6000
    assert (run.info.start_time, run.info.end_time) == (trials[0].start_ms, trials[0].end_ms)


@pytest.mark.slow
def test_a_refused_batch_writes_nothing_and_mlflow_says_why(store: Store) -> None:
    """An invalid metric name in the second trial: the bulk insert writes none of the batch;
    MLflow's own calls then write the first trial and raise MLflow's error on the second (as
    a job without the bulk path would: that run stays RUNNING for a resume to close)."""
    from mlflow.exceptions import MlflowException

    from hyperseq.tracking.bulk import insert_runs
    from hyperseq.tracking.mlflow_store import _run_rows
    exp = store.ensure()
    parent, _ = store.start_job("bad", {}, {})
    bad = _trial("t_bad")
    bad.epochs = [({"bad name!": 1.0}, 1, {}, 1)]
    sql = store.client._tracking_client.store
    with pytest.raises(MlflowException, match="bad name!"):
        insert_runs(sql, exp, [_run_rows(parent, "bad", _trial("t_ok")), _run_rows(parent, "bad", bad)])
    assert store.trial_runs(parent) == []
    with pytest.raises(MlflowException, match="bad name!"):
        store.write_finished(exp, parent, "bad", [_trial("t_ok"), bad])
    assert {r.info.run_name: r.info.status for r in store.trial_runs(parent)} == {
        "t_ok": "FINISHED", "t_bad": "RUNNING"}


@pytest.mark.slow
def test_a_deleted_experiment_takes_no_bulk_runs(store: Store) -> None:
    from mlflow.exceptions import MlflowException
    exp = store.ensure()
    parent, _ = store.start_job("gone", {}, {})
    store.client.delete_experiment(exp)
    with pytest.raises(MlflowException):
        store.write_finished(exp, parent, "gone", [_trial("t1")])
    store.client.restore_experiment(exp)
    assert store.trial_runs(parent) == []


# ---- TrialRecorder: which trials are held, when runs are opened -----------------------------------
class Queue:
    """Stands in for the writer: records what the recorder queues."""

    alive = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def submit(self, fn: Any, *args: Any) -> None:
        self.calls.append((fn.__name__, args))

    def barrier(self) -> int:
        self.calls.append(("barrier", ()))
        return len(self.calls)


def _tune_trial(trial_id: str, **last: Any) -> Any:
    return SimpleNamespace(trial_id=trial_id, config={"lr": 0.1}, last_result=last, error_file=None,
                           get_error=lambda: "RuntimeError: boom")


def test_the_recorder_writes_short_trials_together_and_opens_long_ones(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(R.time, "monotonic", lambda: clock[0])
    queue = Queue()
    rec = R.TrialRecorder(R.Target("sqlite:///x.db", "1", "p", "job"), None, queue)   # type: ignore[arg-type]
    short, long, crash = _tune_trial("short"), _tune_trial("long"), _tune_trial("crash")
    rec.on_trial_start(0, [], short)
    rec.on_trial_start(0, [], long)
    result = {"child": {"val_loss": 1.0}, "epoch": 1, "trial_done": True, "reward": -1.0}
    rec.on_trial_result(0, [], short, result)
    short.last_result = result
    rec.on_trial_complete(0, [], short)
    rec.on_trial_error(0, [], crash)                     # crashed before it started: held too
    clock[0] += R.FLUSH_S / 2
    rec.on_step_end(0, [])
    assert queue.calls == []                             # nothing due yet
    clock[0] += R.OPEN_AFTER_S
    rec.on_step_end(0, [])
    names = [name for name, _ in queue.calls]
    assert names == ["open_child", "write_finished"]     # the long one opened, the others written
    [(_, (_, trial_id, _, start_ms))] = [c for c in queue.calls if c[0] == "open_child"]
    done = queue.calls[1][1][1]
    assert trial_id == "long" and abs(start_ms - done[0].start_ms) < 60_000   # when it started
    assert [(t.trial_id, t.status, len(t.epochs)) for t in done] == [("short", "FINISHED", 1), ("crash", "FAILED", 0)]
    assert done[1].end_tags[T.TAG_ERROR] == "RuntimeError: boom"
    rec.on_trial_result(0, [], long, result)
    long.last_result = result
    rec.on_trial_complete(0, [], long)
    assert [name for name, _ in queue.calls[2:]] == ["log_child", "close_child"]
    rec.on_trial_start(0, [], _tune_trial("cut"))
    rec.on_experiment_end([_tune_trial("cut")])          # Ctrl-C: a held trial ends KILLED
    [(name, (_, [cut])), _] = queue.calls[4:]
    assert name == "write_finished" and cut.status == "KILLED" and cut.end_tags == {T.TAG_INTERRUPTED: "true"}
    rec.close()
    assert len(queue.calls) == 6                         # nothing held twice


def test_the_recorder_writes_at_once_when_nothing_else_runs(monkeypatch) -> None:
    """The job's last trial (or one of a job of one at a time) is not kept waiting `FLUSH_S`."""
    queue = Queue()
    rec = R.TrialRecorder(R.Target("sqlite:///x.db", "1", "p", "job"), None, queue)   # type: ignore[arg-type]
    first, last = _tune_trial("first"), _tune_trial("last", child={"val_loss": 1.0}, trial_done=True)
    rec.on_trial_start(0, [], first)
    rec.on_trial_start(0, [], last)
    first.last_result = last.last_result
    rec.on_trial_complete(0, [], first)
    assert queue.calls == []                             # "last" still runs
    rec.on_trial_complete(0, [], last)
    [(name, (_, done)), barrier] = queue.calls
    assert name == "write_finished" and [t.trial_id for t in done] == ["first", "last"]
    assert barrier == ("barrier", ()) and rec.written() == 2            # a marker after the write
    assert len(queue.calls) == 2                                        # ... placed once
