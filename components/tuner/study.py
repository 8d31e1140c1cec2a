"""The Optuna study behind a Tuner: where it lives, resuming it, and its table.

A study is stored in a SQLAlchemy database (Optuna's RDBStorage): by default the SQLite
file ``<root>/<Tuner id>/studies.sqlite``, else the ``storage`` URL, which several
processes and machines can share. Every trial records who runs it (user attribute
``worker``: host and pid). When a Tuner starts, a RUNNING trial whose worker was this
host's process and is dead (a killed Tuner) is marked FAIL and enqueued again with the
values it had (`recover_interrupted`); on shared storage, a trial of another machine that
stopped sending Optuna's heartbeat is handled the same way (`retry`). A trial that failed with an error
(a NaN loss) records it in user attribute ``error`` and counts as finished; an interrupted
one does not, so a resumed study still runs its full number of trials.

Example:
    >>> storage_label("postgresql://tuner:secret@db/pipelines")
    'postgresql://tuner:***@db/pipelines'
"""

from __future__ import annotations

import csv
import json
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from components.base import process_alive

WORKER, ERROR, RETRY_OF = "worker", "error", "retry_of"
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120
TABLE_COLUMNS = ("number", "state", "value", "duration_s", "params", "last_step", "note")


def storage_label(url: str) -> str:
    """The URL with its password hidden (what the artifact and messages show)."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def open_storage(url: str, *, heartbeat: bool) -> Any:
    """Optuna's RDBStorage at ``url``; with ``heartbeat``, trials of dead workers elsewhere are retried.

    SQLite waits up to 30 s for another writer (as the metadata store does) instead of failing.
    """
    import optuna
    import sqlalchemy

    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        os.makedirs(os.path.dirname(url[len("sqlite:///"):]) or ".", exist_ok=True)
    kwargs: dict[str, Any] = {"engine_kwargs": {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                      heartbeat_stale_trial_callback=retry)
    attempts = 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except (RuntimeError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            # Another process is creating Optuna's tables in this database (their schema
            # version is stamped last, and two processes may race to stamp it): wait for
            # it, as the metadata store does.
            attempts += 1
            if attempts == 5:
                raise
            time.sleep(0.2 * attempts)


def claim(trial: Any) -> None:
    """Records this process as the trial's worker (see `recover_interrupted`)."""
    trial.set_user_attr(WORKER, {"host": socket.gethostname(), "pid": os.getpid()})


def retry(study: Any, trial: Any) -> None:
    """Enqueues an interrupted trial again, with the values it had been given."""
    study.enqueue_trial(dict(trial.params), user_attrs={RETRY_OF: trial.number})


def recover_interrupted(study: Any, storage: Any) -> list[int]:
    """Retries the trials a stopped worker left, with the values they had; returns their numbers.

    A RUNNING trial whose worker is a dead process on this host (or this very process: the
    executor runs one trial at a time, so a RUNNING one of its own was left by an earlier
    call) is marked FAIL first. Then every FAIL trial without an ``error`` (interrupted: killed,
    Ctrl-C, or failed by the heartbeat check) that no later trial retries yet is enqueued again.
    """
    from optuna.trial import TrialState

    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER) or {}
        if worker.get("host") != host or (worker.get("pid") != os.getpid() and process_alive(worker.get("pid"))):
            continue
        storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number),
                                       TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    recovered = [t for t in trials if t.state == TrialState.FAIL and ERROR not in t.user_attrs
                 and t.number not in retried]
    for trial in recovered:
        retry(study, trial)
    return [t.number for t in recovered]


def counts_as_finished(trial: Any) -> bool:
    """COMPLETE and PRUNED trials, and FAIL ones that failed with an error (not interrupted)."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and ERROR in trial.user_attrs)


def finished(study: Any) -> int:
    return sum(counts_as_finished(t) for t in study.get_trials(deepcopy=False))


def stop_after(trials: int) -> Callable[[Any, Any], None]:
    """A study callback that stops ``optimize`` once ``trials`` trials finished (by any worker)."""
    def callback(study: Any, trial: Any) -> None:
        del trial
        if finished(study) >= trials:
            study.stop()
    return callback


def write_table(path: str, trials: Iterable[Any], decode: Callable[[str, Any], Any]) -> None:
    """Writes the study's trials as CSV: number, state, value, duration_s, params (JSON), last_step, note."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_COLUMNS)
        for trial in trials:
            duration = trial.duration.total_seconds() if trial.duration is not None else None
            params = {name: decode(name, value) for name, value in trial.params.items()}
            steps = sorted(trial.intermediate_values)
            writer.writerow([trial.number, trial.state.name, "" if trial.value is None else trial.value,
                             "" if duration is None else round(duration, 3), json.dumps(params, sort_keys=True),
                             steps[-1] if steps else "", _note(trial)])


def _note(trial: Any) -> str:
    notes = []
    if RETRY_OF in trial.user_attrs:
        notes.append(f"retry of trial {trial.user_attrs[RETRY_OF]}")
    if ERROR in trial.user_attrs:
        notes.append(str(trial.user_attrs[ERROR]))
    elif trial.state.name == "FAIL":
        notes.append("interrupted (its worker stopped); retried")
    if trial.state.name == "PRUNED" and trial.intermediate_values:
        notes.append(f"pruned at step {max(trial.intermediate_values)}")
    return "; ".join(notes)
