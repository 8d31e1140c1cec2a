"""A kill -9 matrix over the full taxi pipeline, run as one chain of crashes and reruns.

`run_kill_chain` runs ``python -m pipeline run <full taxi pipeline> --root ROOT`` in its own
process group and kills it with SIGKILL at the first `KillPoint`, reruns it and kills the rerun at
the second point, and so on; a last rerun must complete. Thanks to the cache each rerun resumes
where the last one stopped, so the chain costs about one pipeline run plus the restarts.

A point is armed when its component is RUNNING in the metadata store (polled read-only through
``sqlite3``), then fires after ``delay_s``, or (``trigger="checkpoint"``) once the Trainer's
resumable work dir holds a checkpoint at ``min_step`` or later, or (``trigger="staging"``) once a
Pusher staging dir ``<root>/serving/<model>/.tmp-*`` exists. A point whose component finished (or
whose run ended) before it fired is recorded as not reached, and the same run goes on to the next
point. Each step records whether the kill hit the component while it was RUNNING; once the next
run has started, whether that execution became ABANDONED and the components finished before it
came from the cache.

`final_checks` then looks at the root: the last run COMPLETE, one loadable version under
``<root>/serving/<model>/`` with a ``serving_default`` signature, no ``.tmp-*`` dir anywhere, every
execution killed while RUNNING ABANDONED (one the kill found already published, COMPLETE) and every
(non-resolver) node COMPLETE exactly once across the chain.
`summary` folds both into one dict ("crash points survived over tried").

Example:
    >>> [p.name for p in DEFAULT_POINTS][:2]
    ['ExampleGen early', 'ExampleGen late']
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_NAME = "taxi"
TRAIN_STEPS = 300
CHECKPOINT_EVERY = 100
# The full taxi pipeline, trained briefly. Its Evaluator bounds are loosened (as in
# tests/pipeline/test_retraining.py) so a model resumed several times still gets blessed and pushed.
WRAPPER = '''"""The full taxi pipeline for the kill -9 matrix (written by tests/pipeline/kill_matrix.py)."""
from components.evaluator import MetricThreshold
from pipeline.examples.taxi_full_pipeline import create_pipeline as full_pipeline


def create_pipeline(*, root, beam_pipeline_args=(), metadata=None):
    return full_pipeline(root=root, train_steps={steps}, save_checkpoints_steps={every}, random_seed=7,
                         thresholds=(MetricThreshold("AUC", lower_bound=0.8, min_change=-0.05),
                                     MetricThreshold("Calibration", lower_bound=0.5, upper_bound=2.0)),
                         beam_pipeline_args=beam_pipeline_args, metadata=metadata)
'''
FINISHED = ("COMPLETE", "CACHED", "FAILED", "ABANDONED")
SNAPSHOT_DIRS = ("pipeline", "components", "trainer", "serving", os.path.join("data", "taxi"))


@dataclasses.dataclass(frozen=True)
class KillPoint:
    """Where to kill: in ``component``, ``delay_s`` after it is seen RUNNING (``trigger="running"``),
    once the Trainer has a checkpoint at ``min_step`` or later (``"checkpoint"``), or once a Pusher
    staging dir exists (``"staging"``; with ``fallback_running``, at once when the Pusher is seen
    RUNNING first, a kill before the copy; without, a Pusher that finishes within the few ms
    between its RUNNING state and its staging dir is not reached). ``arm_after``: for a node that
    can finish within a tenth of a second, poll every few ms (the store, or the staging dir) once
    this earlier node is RUNNING, and without sleeping once it has finished."""

    component: str
    trigger: str = "running"
    delay_s: float = 0.0
    min_step: int | None = None
    label: str | None = None
    arm_after: str | None = None
    fallback_running: bool = False

    def __post_init__(self) -> None:
        if self.trigger not in ("running", "checkpoint", "staging"):
            raise ValueError(f"KillPoint got trigger={self.trigger!r}; expected 'running', 'checkpoint' or "
                             "'staging'.")
        if self.trigger == "checkpoint" and self.min_step is None:
            raise ValueError("KillPoint(trigger='checkpoint') needs min_step.")

    @property
    def name(self) -> str:
        return self.label or f"{self.component} {self.trigger} +{self.delay_s:g}s"


DEFAULT_POINTS: list[KillPoint] = [
    KillPoint("ExampleGen", label="ExampleGen early"),
    KillPoint("ExampleGen", delay_s=4, label="ExampleGen late"),
    KillPoint("StatisticsGen", delay_s=1, label="StatisticsGen"),
    KillPoint("SchemaGen", arm_after="StatisticsGen", label="SchemaGen"),
    KillPoint("ExampleValidator", arm_after="SchemaGen", label="ExampleValidator"),
    KillPoint("Transform", delay_s=1, label="Transform early"),
    KillPoint("Transform", delay_s=15, label="Transform late"),
    KillPoint("Trainer", label="Trainer before its first checkpoint"),
    KillPoint("Trainer", trigger="checkpoint", min_step=CHECKPOINT_EVERY, label="Trainer after a checkpoint"),
    KillPoint("Trainer", trigger="checkpoint", min_step=TRAIN_STEPS, label="Trainer after its last checkpoint"),
    KillPoint("Evaluator", delay_s=4, label="Evaluator"),
    KillPoint("InfraValidator", delay_s=1, label="InfraValidator"),
    KillPoint("Pusher", trigger="staging", arm_after="InfraValidator", label="Pusher mid-copy"),
]


class ChainTimeout(RuntimeError):
    """The chain ran past its deadline (every process it started has been killed)."""


# -- reading the store (read-only, no SQLAlchemy: cheap enough to poll) --------------------------
def _query(root: str, sql: str, args: Sequence[Any] = ()) -> list[tuple] | None:
    """Rows of a read-only query on ``<root>/metadata.sqlite``; None while unreadable (absent, locked)."""
    path = os.path.join(root, "metadata.sqlite")
    if not os.path.isfile(path):
        return None
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql, tuple(args)).fetchall()
        finally:
            con.close()
    except sqlite3.Error:  # the tables are being created, or a writer holds the lock
        return None


def _max_run_id(root: str) -> int:
    rows = _query(root, "SELECT max(id) FROM runs")
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _run_of(root: str, pid: int, after: int) -> int | None:
    rows = _query(root, "SELECT id FROM runs WHERE pid = ? AND id > ? ORDER BY id DESC LIMIT 1", (pid, after))
    return int(rows[0][0]) if rows else None


def _run_state(root: str, run_id: int) -> str | None:
    rows = _query(root, "SELECT state FROM runs WHERE id = ?", (run_id,))
    return rows[0][0] if rows else None


def _executions(root: str, run_id: int, *, resolvers: bool = True) -> dict[str, tuple[int, str]]:
    """component -> (execution id, state) in a run (the newest execution per component)."""
    rows = _query(root, "SELECT component, id, state, component_type FROM executions WHERE run_id = ? "
                        "ORDER BY id", (run_id,))
    return {c: (int(i), s) for c, i, s, t in rows or [] if resolvers or not t.endswith("Resolver")}


def _execution_state(root: str, execution_id: int) -> str | None:
    rows = _query(root, "SELECT state FROM executions WHERE id = ?", (execution_id,))
    return rows[0][0] if rows else None


def checkpoint_step(root: str, component: str = "Trainer") -> int | None:
    """The newest checkpoint step in the Trainer's resumable work dirs (``<root>/.work/Trainer/*/model_dir``)."""
    base = os.path.join(root, ".work", component)
    best = None
    for name in os.listdir(base) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, name, "model_dir", "checkpoint")) as f:
                match = re.search(r'model_checkpoint_path: ".*-(\d+)"', f.read())
        except OSError:
            continue
        if match:
            best = max(best or 0, int(match.group(1)))
    return best


def _staging_dirs(root: str, model_name: str = MODEL_NAME) -> list[str]:
    path = os.path.join(root, "serving", model_name)
    try:
        return sorted(n for n in os.listdir(path) if n.startswith(".tmp-"))
    except OSError:
        return []


# -- the chain ------------------------------------------------------------------------------------
class _Run:
    """One ``python -m pipeline run`` in its own process group."""

    def __init__(self, root: str, pipeline_file: str, extra_args: Sequence[str], log_path: str,
                 source: str = REPO):
        self.root = root
        self.before = _max_run_id(root)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200",
               "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.log.write(f"\n===== run started {time.strftime('%H:%M:%S')} =====\n".encode())
        self.log.flush()
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", pipeline_file, "--root", root,
                                      *extra_args], cwd=source, env=env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self._run_id: int | None = None

    @property
    def run_id(self) -> int | None:
        if self._run_id is None:
            self._run_id = _run_of(self.root, self.proc.pid, self.before)
        return self._run_id

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group (Beam workers, the serving subprocess, ...), then reap; once."""
        if self.log.closed:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=max(timeout, 0.1))
        finally:
            self.kill()  # whatever it left in its group (it must leave nothing)
        return rc


def _component_state(run: _Run, component: str) -> tuple[int | None, str | None]:
    run_id = run.run_id
    if run_id is None:
        return None, None
    execution = _executions(run.root, run_id).get(component)
    return execution if execution else (None, None)


def _wait_and_fire(run: _Run, point: KillPoint, deadline: float, poll_s: float) -> tuple[bool, str]:
    """Waits for the point in ``run``; kills the run and returns (True, how) when it fires, or
    (False, why not) when the component finished or the run ended first."""

    def check_deadline() -> None:
        if time.monotonic() > deadline:
            raise ChainTimeout(f"kill chain: deadline passed waiting for {point.name}")

    def gone() -> str | None:
        state = _component_state(run, point.component)[1]
        if state in FINISHED:
            return f"{point.component} {state} before the point fired"
        if not run.alive():
            return f"the run ended (exit {run.proc.returncode}) before the point fired"
        return None

    # Arm: the component is RUNNING; or, for a node that can finish within a tenth of a second,
    # the node before it (arm_after) is, and from then on the store is polled every few ms.
    fast = point.arm_after is not None
    arm = point.arm_after or point.component
    while True:
        check_deadline()
        state = _component_state(run, arm)[1]
        if state == "RUNNING" or (fast and state in FINISHED):
            break
        why = gone()
        if why:
            return False, why
        time.sleep(poll_s)

    def hot() -> bool:  # the node before has finished: the target starts within milliseconds
        return _component_state(run, point.arm_after)[1] in FINISHED

    if fast and point.trigger == "running":
        busy = False
        while _component_state(run, point.component)[1] != "RUNNING":
            check_deadline()
            why = gone()
            if why:
                return False, why
            busy = busy or hot()
            if not busy:
                time.sleep(0.003)
        if point.delay_s <= 0:
            run.kill()
            return True, "RUNNING (caught by the fast poll)"

    if point.trigger == "running":
        until = time.monotonic() + point.delay_s
        while time.monotonic() < until:
            check_deadline()
            why = gone()
            if why:
                return False, why
            time.sleep(min(poll_s, max(until - time.monotonic(), 0.01)))
        run.kill()
        return True, f"RUNNING +{point.delay_s:g}s"

    if point.trigger == "checkpoint":
        start_step = checkpoint_step(run.root)
        while True:
            check_deadline()
            step = checkpoint_step(run.root)
            if step is not None and step >= point.min_step:
                run.kill()
                return True, f"checkpoint {step} (work dir had {start_step} when the Trainer started)"
            why = gone()
            if why:
                return False, why
            time.sleep(min(poll_s, 0.1))

    # staging: poll the store every 2 ms; once the node before has finished (or the Pusher is
    # RUNNING), the serving dir without sleeping: the Pusher lasts some 20 ms, its copy a few.
    next_db, busy, seen_running = 0.0, False, False
    while True:
        staged = _staging_dirs(run.root)
        if staged:
            run.kill()
            return True, "staging dir present" + (" (seen RUNNING first)" if seen_running else "")
        now = time.monotonic()
        if now >= next_db:
            check_deadline()
            next_db = now + (0.02 if busy else 0.002)
            state = _component_state(run, point.component)[1]
            if state == "RUNNING":
                if point.fallback_running:
                    run.kill()
                    return True, "RUNNING (before a staging dir was seen)"
                seen_running = busy = True
            why = gone() if state != "RUNNING" else None
            if why:
                return False, why + (" (seen RUNNING, no staging dir seen)" if seen_running else "")
            busy = busy or (fast and hot())
        if not busy:
            time.sleep(0.002)


def _after_rerun(root: str, step: dict, rerun_id: int | None) -> None:
    """Fills ``step`` with what the next run found: the killed execution ABANDONED, finished nodes CACHED."""
    if step.get("execution_id") is not None:
        step["abandoned"] = _execution_state(root, step["execution_id"]) == "ABANDONED"
    step["killed_run_state"] = _run_state(root, step["run_id"]) if step.get("run_id") else None
    if rerun_id is None:
        return
    rerun = _executions(root, rerun_id)
    # Resolvers ask the store again in every run: not cached by design.
    done_before = [c for c, (_, s) in _executions(root, step["run_id"], resolvers=False).items()
                   if s in ("COMPLETE", "CACHED")]
    not_cached = [c for c in done_before if c in rerun and rerun[c][1] != "CACHED"]
    step["rerun_id"] = rerun_id
    step["rerun_cached_ok"] = not not_cached
    if not_cached:
        step["rerun_not_cached"] = not_cached


def snapshot_source(dest: str, *, commit: str | None = None) -> str:
    """Copies the project's packages and the taxi data (`SNAPSHOT_DIRS`) to ``dest``: as they are in
    this checkout, or (``commit``, e.g. ``"HEAD"``) as committed there.

    The chain runs from the copy, so edits to the checkout while it runs (minutes) cannot change a
    component's code fingerprint halfway, which would rerun it with other code.
    """
    if commit is None:
        for name in SNAPSHOT_DIRS:
            shutil.copytree(os.path.join(REPO, name), os.path.join(dest, name),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return dest
    os.makedirs(dest, exist_ok=True)
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar", commit, *SNAPSHOT_DIRS],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


def write_pipeline_file(directory: str, *, train_steps: int = TRAIN_STEPS,
                        save_checkpoints_steps: int = CHECKPOINT_EVERY) -> str:
    """Writes the wrapper pipeline (the full taxi pipeline, trained briefly) and returns its path."""
    path = os.path.join(directory, "kill_matrix_pipeline.py")
    with open(path, "w") as f:
        f.write(WRAPPER.format(steps=train_steps, every=save_checkpoints_steps))
    return path


def run_kill_chain(root: str, points: Sequence[KillPoint] = DEFAULT_POINTS, *, pipeline_file: str | None = None,
                   extra_args: Sequence[str] = (), deadline_s: float = 1500.0, poll_s: float = 0.25,
                   log_path: str | None = None, source: str = "copy") -> list[dict]:
    """Runs the full taxi pipeline in ``root``, killing it with SIGKILL at each point in turn, then
    reruns it to completion.

    Args:
        root: The pipeline root (a fresh directory, or one a chain may resume in).
        points: Kill points, in pipeline order.
        pipeline_file: A pipeline .py file defining ``create_pipeline(*, root, beam_pipeline_args,
            metadata)``; None writes `WRAPPER` (the full taxi pipeline, ``TRAIN_STEPS`` steps,
            a checkpoint every ``CHECKPOINT_EVERY``) into a temporary directory.
        extra_args: More ``pipeline run`` arguments (e.g. ``--beam-arg=...``).
        deadline_s: Hard bound on the whole chain; past it every process is killed and
            `ChainTimeout` is raised.
        poll_s: How often the store is polled while waiting for a component.
        log_path: Where the runs' stdout and stderr go (default ``<root>.kill_chain.log``).
        source: What code runs: ``"copy"``, a copy of this checkout's packages and taxi data
            made first (`snapshot_source`), so edits during the chain do not change what it
            runs; ``"head"``, the same as committed at HEAD (leaves out uncommitted edits);
            ``"checkout"``, the checkout itself.

    Returns:
        One dict per point (``point``, ``component``, ``reached``, ``killed_running``, ``how``,
        ``seconds`` from the run's start to the kill, ``run_id``, ``execution_id``,
        ``checkpoint_step`` for Trainer points, and, from the next run, ``abandoned``,
        ``killed_run_state``, ``rerun_cached_ok``), then a last dict with ``point="final"``:
        the final run's ``rc``, ``run_id``, ``state`` and ``seconds``.
    """
    if source not in ("copy", "head", "checkout"):
        raise ValueError(f"run_kill_chain got source={source!r}; expected 'copy', 'head' or 'checkout'.")
    deadline = time.monotonic() + deadline_s
    os.makedirs(os.path.dirname(os.path.abspath(root)) or ".", exist_ok=True)
    log_path = log_path or os.path.abspath(root).rstrip("/") + ".kill_chain.log"
    steps: list[dict] = []
    pending: list[dict] = []  # killed steps waiting for the next run's verdict
    run: _Run | None = None
    scratch = tempfile.mkdtemp(prefix="kill_matrix_")
    try:
        if source == "checkout":
            source = REPO
        else:
            source = snapshot_source(os.path.join(scratch, "src"), commit="HEAD" if source == "head" else None)
        if pipeline_file is None:
            pipeline_file = write_pipeline_file(scratch)
        for point in points:
            if run is None or not run.alive():
                if run is not None:  # it ended or was killed: it is the rerun of the earlier kills
                    verdicts = [s for s in pending if s["run_id"] != run.run_id]
                    for step in verdicts:
                        _after_rerun(root, step, run.run_id)
                    pending = [s for s in pending if s not in verdicts]
                run = _Run(root, pipeline_file, extra_args, log_path, source)
            step: dict[str, Any] = {"point": point.name, "component": point.component}
            reached, how = _wait_and_fire(run, point, deadline, poll_s)
            execution_id, state = _component_state(run, point.component)
            step.update(seconds=round(time.monotonic() - run.started, 1), run_id=run.run_id,
                        execution_id=execution_id, reached=reached, how=how,
                        killed_running=bool(reached and state == "RUNNING"))
            if point.component == "Trainer":
                step["checkpoint_step"] = checkpoint_step(root)
            if point.trigger == "staging":
                step["staging_dirs"] = len(_staging_dirs(root))
            if reached:
                pending.append(step)
            steps.append(step)
        if run is not None and run.alive():
            final = run  # the last point was not reached: this run goes on to the end
        else:
            if run is not None:
                verdicts = [s for s in pending if s["run_id"] != run.run_id]
                for step in verdicts:
                    _after_rerun(root, step, run.run_id)
                pending = [s for s in pending if s not in verdicts]
            final = run = _Run(root, pipeline_file, extra_args, log_path, source)
        rc = final.wait(deadline - time.monotonic())
        for step in pending:
            _after_rerun(root, step, final.run_id)
        steps.append({"point": "final", "rc": rc, "run_id": final.run_id,
                      "state": _run_state(root, final.run_id) if final.run_id else None,
                      "seconds": round(time.monotonic() - final.started, 1)})
    except subprocess.TimeoutExpired as e:
        raise ChainTimeout(f"kill chain: the final run did not end before the deadline ({deadline_s:g} s)") from e
    finally:
        if run is not None:
            run.kill()  # idempotent: a group already gone is skipped
        shutil.rmtree(scratch, ignore_errors=True)
    return steps


# -- after the chain ------------------------------------------------------------------------------
def _saved_model_check(path: str) -> str | None:
    """None when ``path`` loads with tf.saved_model.load and has a serving_default signature, else why not."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - reported
        return f"tf.saved_model.load({path}) failed: {type(e).__name__}: {e}"
    if "serving_default" not in loaded.signatures:
        return f"{path} has signatures {sorted(loaded.signatures)}, no serving_default"
    return None


def final_checks(root: str, steps: list[dict], *, model_name: str = MODEL_NAME,
                 load_model: bool = True) -> dict:
    """What the root looks like after the chain; ``problems`` lists every check that failed."""
    problems: list[str] = []
    final = steps[-1] if steps and steps[-1].get("point") == "final" else {}
    if final.get("rc") != 0 or final.get("state") != "COMPLETE":
        problems.append(f"final run: rc={final.get('rc')} state={final.get('state')}")

    serving = os.path.join(root, "serving", model_name)
    versions = sorted(n for n in os.listdir(serving) if n.isdigit()) if os.path.isdir(serving) else []
    if len(versions) != 1:
        problems.append(f"{serving} holds versions {versions}, expected exactly one")
    elif load_model:
        why = _saved_model_check(os.path.join(serving, versions[0]))
        if why:
            problems.append(why)

    tmp_dirs, failed_dirs = [], []
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            if name.startswith(".tmp-"):
                tmp_dirs.append(os.path.relpath(os.path.join(dirpath, name), root))
            elif name.startswith("failed-"):
                failed_dirs.append(os.path.relpath(os.path.join(dirpath, name), root))
    if tmp_dirs:
        problems.append(f".tmp-* dirs left: {tmp_dirs}")

    for step in steps:
        if step.get("reached") and step.get("execution_id") is not None:
            state = _execution_state(root, step["execution_id"])
            # A kill that lands in the last milliseconds, after the component published, finds it
            # COMPLETE (publishing is one transaction); the rerun must then take it from the cache.
            expected = "ABANDONED" if step.get("killed_running") else "COMPLETE"
            if state != expected:
                problems.append(f"{step['point']}: killed execution {step['execution_id']} is {state}, "
                                f"expected {expected}")
        if step.get("reached") and step.get("rerun_cached_ok") is False:
            problems.append(f"{step['point']}: the rerun re-executed {step.get('rerun_not_cached')}")

    rows = _query(root, "SELECT component, component_type, state FROM executions") or []
    complete: dict[str, int] = {}
    for component, component_type, state in rows:
        if component_type.endswith("Resolver"):  # resolvers ask the store again in every run
            continue
        complete.setdefault(component, 0)
        complete[component] += state == "COMPLETE"
    not_once = {c: n for c, n in complete.items() if n != 1}
    if not complete or not_once:
        problems.append(f"components not COMPLETE exactly once across the chain: {not_once or 'no executions'}")

    models = _query(root, "SELECT properties FROM artifacts WHERE component = 'Trainer' AND output_key = 'model' "
                          "AND state = 'PUBLISHED'") or []
    resumed = [json.loads(p).get("resumed_from_step") for (p,) in models]

    temp_left = os.listdir(os.path.join(root, ".temp")) if os.path.isdir(os.path.join(root, ".temp")) else []
    work_left = [os.path.relpath(os.path.join(d, n), root) for d in [os.path.join(root, ".work")]
                 if os.path.isdir(d) for n in os.listdir(d) if os.listdir(os.path.join(d, n))]
    return {"problems": problems, "versions": versions, "tmp_dirs": tmp_dirs, "failed_dirs": failed_dirs,
            "complete_per_component": complete, "trainer_resumed_from_step": resumed,
            "temp_dirs_left": sorted(temp_left), "work_dirs_left": work_left}


def summary(steps: list[dict], checks: dict) -> dict:
    """One JSON-able line: points tried, killed while RUNNING, survived (ABANDONED, finished nodes
    cached by the rerun, and the chain ended with every final check passing), and per point."""
    points = [s for s in steps if s.get("point") != "final"]
    killed = [s for s in points if s.get("killed_running")]
    ok = not checks["problems"]
    survived = [s for s in killed if ok and s.get("abandoned") and s.get("rerun_cached_ok", True)]
    final = steps[-1] if steps and steps[-1].get("point") == "final" else {}
    return {
        "crash_points_tried": len(points),
        "killed_running": len(killed),
        "survived": len(survived),
        "not_reached": [s["point"] for s in points if not s.get("reached")],
        "final_ok": ok,
        "problems": checks["problems"],
        "failed_dirs": len(checks["failed_dirs"]),
        "temp_dirs_left": len(checks["temp_dirs_left"]),
        "final_run_s": final.get("seconds"),
        "trainer_resumed_from_step": checks.get("trainer_resumed_from_step"),
        "points": [{"point": s["point"], "killed_running": s.get("killed_running"), "s": s.get("seconds"),
                    "how": s.get("how"), "abandoned": s.get("abandoned"),
                    "rerun_cached_ok": s.get("rerun_cached_ok"),
                    **({"checkpoint_step": s["checkpoint_step"]} if "checkpoint_step" in s else {})}
                   for s in points],
    }
