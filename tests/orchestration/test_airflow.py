"""Airflow 3 DAGs from pipelines (pipeline/airflow_dag.py), with real Airflow.

Each test runs Airflow in a subprocess with its own AIRFLOW_HOME (SQLite) in a temp dir:
importing airflow configures process-wide logging and settings from AIRFLOW_HOME, which
must not leak into the rest of the suite. The DAG runs use ``dag.test()``, which runs each
task through Airflow's task runner in process; every task starts ``python -m pipeline
run-node`` for its node.

- test_example_dag_parses_without_tensorflow: a DagBag of airflow/dags parses the taxi
  retraining DAG (11 tasks, the pipeline's edges) without importing TensorFlow, Beam or TFT,
  and well within the bound below.
- test_dag_runs_record_nodes_under_the_run_id: a toy pipeline (tests/pipeline/toy_components.py
  plus a node that fails on its first try) run twice with two logical dates, a DAG whose
  node always fails, and one whose node outlives its execution_timeout.
- test_build_dag_settings: a create_pipeline function, a timedelta and a timetable schedule;
  build_dag's errors.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.metadata import CACHED, COMPLETE, FAILED, MetadataStore

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

# The airflow extra; CI installs it (scripts/bootstrap.sh) and must not skip. Asked of the
# installed distributions: importing airflow here would configure this process from
# AIRFLOW_HOME, and the repository's airflow/ folder is a namespace package of that name.
try:
    HAVE_AIRFLOW = importlib.metadata.version("apache-airflow").startswith("3.")
except importlib.metadata.PackageNotFoundError:
    HAVE_AIRFLOW = False

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(not HAVE_AIRFLOW and not os.environ.get("CI"),
                       reason='needs the airflow extra: pip install -c constraints.txt -e ".[airflow]"'),
]

# The parse bound. The DagBag parse of the example takes ~0.2 s here (the file loads the
# pipeline's DSL and component classes; Airflow is already imported, as in the DAG
# processor); importing TensorFlow alone takes several seconds on this machine, and Airflow
# kills a parse after 30 s (dagbag_import_timeout). 10 s leaves room for a loaded 2-core CI
# machine while still failing on a DAG file that pulls in TensorFlow and Beam.
PARSE_BOUND_S = 10.0
HEAVY = ("tensorflow", "apache_beam", "tensorflow_transform", "tfx_bsl", "tensorflow_model_analysis")


def _airflow_env(tmp: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(AIRFLOW_HOME=str(tmp / "airflow_home"), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__UNIT_TEST_MODE="False",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return env


def _run_script(tmp: Path, script: str, env: dict[str, str], timeout: float) -> str:
    """Runs ``script`` with this interpreter; returns its output. Kills what it started on a timeout."""
    path = tmp / "driver.py"
    path.write_text(textwrap.dedent(script))
    out = tmp / "driver.out"
    with open(out, "wb") as f:
        process = subprocess.Popen([PYTHON, str(path)], stdout=f, stderr=subprocess.STDOUT, env=env,
                                   cwd=tmp, start_new_session=True)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        finally:
            _kill_leftovers(tmp)  # node processes run in sessions of their own
    text = out.read_text(errors="replace")
    assert process.returncode == 0, f"driver exited {process.returncode}:\n{text[-6000:]}"
    return text


def _kill_leftovers(tmp: Path) -> None:
    """Kills processes whose command line names ``tmp`` (run-node processes this test started)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if str(tmp) in cmdline:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def _results(output: str) -> list[dict]:
    return [json.loads(line[len("RESULT "):]) for line in output.splitlines() if line.startswith("RESULT ")]


def _task_section(output: str, task_id: str, nth: int = 0) -> str:
    """The lines dag.test() printed between the start and the end of ``task_id``'s nth try."""
    start_marker, end_marker = f"[DAG TEST] starting task_id={task_id} ", f"[DAG TEST] end task task_id={task_id} "
    starts = [i for i in range(len(output)) if output.startswith(start_marker, i)]
    assert len(starts) > nth, f"task {task_id} did not start {nth + 1} time(s):\n{output[-4000:]}"
    begin = starts[nth]
    end = output.find(end_marker, begin)
    assert end != -1, f"task {task_id} try {nth + 1} did not end:\n{output[begin:][-4000:]}"
    return output[begin:end]


PARSE_SCRIPT = """
import json, sys, time
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag

started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1] if len(sys.argv) > 1 else {dags!r})
elapsed = time.perf_counter() - started
dag = bag.dags.get("taxi_retraining")
print("RESULT " + json.dumps({{
    "dagbag_s": elapsed,
    "file_s": {{s.file: s.duration.total_seconds() for s in bag.dagbag_stats}},
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "heavy": sorted(m for m in {heavy!r} if m in sys.modules),
    "schedule": str(getattr(dag, "schedule", None)),
    "retries": [t.retries for t in dag.tasks] if dag else [],
    "edges": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}} if dag else None,
}}), flush=True)
"""


def test_example_dag_parses_without_tensorflow(tmp_path):
    dags = REPO / "airflow" / "dags"
    started = time.monotonic()
    output = _run_script(tmp_path, PARSE_SCRIPT.format(dags=str(dags), heavy=HEAVY),
                         _airflow_env(tmp_path, dags), timeout=120)
    (result,) = _results(output)
    print(f"DagBag parse of {dags}: {result['dagbag_s']:.3f} s ({result['file_s']}); "
          f"whole subprocess with the Airflow import {time.monotonic() - started:.1f} s")
    assert result["errors"] == {}
    assert result["heavy"] == [], f"parsing the DAG imported {result['heavy']}"
    assert result["dagbag_s"] < PARSE_BOUND_S
    assert result["schedule"] == "@daily"
    assert set(result["retries"]) == {2}
    edges = result["edges"]
    assert list(edges) == ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
                           "WarmStartResolver", "Trainer", "BaselineResolver", "Evaluator", "InfraValidator",
                           "Pusher"]
    assert edges["ExampleGen"] == []
    assert edges["Trainer"] == ["SchemaGen", "StatisticsGen", "Transform", "WarmStartResolver"]
    assert edges["Evaluator"] == ["BaselineResolver", "ExampleGen", "Trainer"]
    assert edges["Pusher"] == ["Evaluator", "InfraValidator", "Trainer"]


# A toy pipeline with real (file-writing) components: Source -> Add -> Flaky, Source -> Add2.
# Flaky logs a line and, on the first try of a run, fails with an injected fault (it makes
# the marker file, so the next try passes).
TOY_PIPELINE = '''
import dataclasses
import logging
import os
import sys

sys.path.insert(0, {repo!r})

from components.artifacts import ExampleStatistics, Schema
from components.base import Component, ComponentError, InputSpec
from pipeline.dsl import Pipeline
from tests.pipeline.toy_components import Add, Source


@dataclasses.dataclass(frozen=True)
class FlakyParams:
    marker: str = ""


class Flaky(Component):
    INPUTS = {{"statistics": InputSpec(ExampleStatistics)}}
    OUTPUTS = {{"schema": Schema}}
    PARAMETERS = FlakyParams

    def __init__(self, statistics, *, marker="", id=None):
        super().__init__(inputs={{"statistics": statistics}}, parameters=FlakyParams(marker), id=id)

    def executor(self):
        def run(ctx):
            logging.getLogger("components.flaky").info("Flaky read %s", ctx.inputs["statistics"][0].uri)
            marker = ctx.parameters.marker
            if marker and not os.path.exists(marker):
                open(marker, "w").close()
                raise ComponentError("Flaky: injected fault on the first try. How to fix: retry it.")
            with open(os.path.join(ctx.outputs["schema"].uri, "schema.pbtxt"), "w") as f:
                f.write("")
        return run


def create_pipeline(*, root, metadata=None, beam_pipeline_args=(), fail=False, marker="", sleep=0.0):
    source = Source(3, sleep=sleep, id="Source")
    add = Add(source.outputs["examples"], add=10, fail=fail, id="Add")
    flaky = Flaky(add.outputs["statistics"], marker=marker, id="Flaky")
    add2 = Add(source.outputs["examples"], add=5, id="Add2")
    return Pipeline("toy", root, [source, add, flaky, add2], metadata=metadata)
'''

TOY_DAGS = '''
import datetime as dt
from pipeline.airflow_dag import build_dag

ok = build_dag({pipeline!r}, dag_id="toy_ok", schedule="@daily",
               start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), root={root_ok!r},
               overrides={{"marker": {marker!r}}}, retries=1, retry_delay=dt.timedelta(seconds=0))
failing = build_dag({pipeline!r}, dag_id="toy_fail", schedule=None, root={root_fail!r},
                    overrides={{"fail": True}})
slow = build_dag({pipeline!r}, dag_id="toy_timeout", schedule=None, root={root_timeout!r},
                 overrides={{"sleep": 300}}, execution_timeout=dt.timedelta(seconds=3))
'''

RUN_SCRIPT = """
import datetime as dt, json, os, time
from airflow.utils import db
from airflow.dag_processing.dagbag import DagBag

db.initdb()
bag = DagBag(dag_folder={dags!r})
assert not bag.import_errors, bag.import_errors
for dag_id, day in (("toy_ok", 2), ("toy_ok", 3), ("toy_fail", 2), ("toy_timeout", 2)):
    started = time.perf_counter()
    dag_run = bag.dags[dag_id].test(logical_date=dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc))
    tis = {{ti.task_id: [str(ti.state), ti.try_number] for ti in dag_run.get_task_instances()}}
    left = []  # node processes of this DAG still alive after its run
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = open(f"/proc/{{pid}}/cmdline", "rb").read().decode(errors="replace")
        except OSError:
            continue
        if "run-node" in cmdline and "root_" in cmdline:
            left.append(cmdline.replace("\\0", " "))
    print("RESULT " + json.dumps({{"dag_id": dag_id, "run_id": dag_run.run_id, "state": str(dag_run.state),
                                   "tasks": tis, "seconds": time.perf_counter() - started, "left": left}}),
          flush=True)
"""


@pytest.mark.slow
def test_dag_runs_record_nodes_under_the_run_id(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    pipeline_file = tmp_path / "toy_pipeline.py"
    pipeline_file.write_text(TOY_PIPELINE.format(repo=str(REPO)))
    root_ok, root_fail, root_timeout = tmp_path / "root_ok", tmp_path / "root_fail", tmp_path / "root_timeout"
    (dags / "toy_dags.py").write_text(TOY_DAGS.format(
        pipeline=str(pipeline_file), root_ok=str(root_ok), root_fail=str(root_fail),
        root_timeout=str(root_timeout), marker=str(tmp_path / "flaky-failed-once")))
    output = _run_script(tmp_path, RUN_SCRIPT.format(dags=str(dags)), _airflow_env(tmp_path, dags), timeout=240)
    first, second, failing, timed_out = _results(output)
    print("dag.test() seconds:", [round(r["seconds"], 1) for r in (first, second, failing, timed_out)])
    assert [r["left"] for r in (first, second, failing, timed_out)] == [[], [], [], []]

    # Run 1: every node ran under the Airflow run_id; Flaky failed once and Airflow retried it.
    assert first["state"] == "success", output[-6000:]
    nodes = ["Source", "Add", "Flaky", "Add2"]
    assert {t: s for t, (s, _) in first["tasks"].items()} == dict.fromkeys(nodes, "success")
    assert first["tasks"]["Flaky"][1] == 2 and first["tasks"]["Source"][1] == 1
    store = MetadataStore(f"sqlite:///{root_ok / 'metadata.sqlite'}")
    run1 = store.run_id_of("toy", first["run_id"])
    assert run1 is not None
    executions = store.executions_of_run(run1)
    assert _states(executions) == {"Source": [COMPLETE], "Add": [COMPLETE], "Flaky": [FAILED, COMPLETE],
                                   "Add2": [COMPLETE]}
    assert _run_state(store, run1) == COMPLETE  # the DAG's success callback

    # The component's log lines and its error reach the task log of each try.
    try1, try2 = _task_section(output, "Flaky", 0), _task_section(output, "Flaky", 1)
    assert "[Flaky.log]" in try1 and "Flaky read" in try1
    assert "Flaky: injected fault on the first try" in try1
    assert "Flaky: COMPLETE" in try2 and "injected fault" not in try2

    # Run 2 (another logical date): a second run key; unchanged inputs come from the cache.
    assert second["state"] == "success", output[-6000:]
    assert second["run_id"] != first["run_id"]
    run2 = store.run_id_of("toy", second["run_id"])
    assert run2 not in (None, run1)
    cached = store.executions_of_run(run2)
    assert _states(cached) == {"Source": [CACHED], "Add": [CACHED], "Flaky": [CACHED], "Add2": [CACHED]}
    assert "Source: CACHED" in _task_section(output, "Source", 1)
    assert _run_state(store, run2) == COMPLETE

    # A failing node fails its task (no retries asked for), with the component's error in the
    # task log; its downstream task does not run; the store's run is FAILED.
    assert failing["state"] == "failed"
    assert failing["tasks"]["Add"] == ["failed", 1]
    assert failing["tasks"]["Flaky"][0] == "upstream_failed"
    assert failing["tasks"]["Add2"][0] == "success"
    section = _task_section(output, "Add", 2)  # the third Add task overall: toy_fail's
    assert "error: Add failed: Add got fail=True; expected False. How to fix: unset it." in section
    assert "exited with status 1" in section
    fail_store = MetadataStore(f"sqlite:///{root_fail / 'metadata.sqlite'}")
    run3 = fail_store.run_id_of("toy", failing["run_id"])
    assert _run_state(fail_store, run3) == FAILED

    # A node past its execution_timeout: Airflow fails the task, and its process group is
    # killed (no run-node process is left, checked above), long before the node's 300 s sleep.
    assert timed_out["state"] == "failed"
    assert timed_out["tasks"]["Source"] == ["failed", 1]
    assert timed_out["seconds"] < 60, timed_out
    assert "Timeout" in _task_section(output, "Source", 3)


def _states(executions: list[dict]) -> dict[str, list[str]]:
    """Each node's execution states in the order they were recorded (the nodes' order is Airflow's)."""
    states: dict[str, list[str]] = {}
    for execution in sorted(executions, key=lambda e: e["id"]):
        states.setdefault(execution["component"], []).append(execution["state"])
    return states


def _run_state(store: MetadataStore, run_id: int) -> str:
    return next(r["state"] for r in store.list_runs() if r["id"] == run_id)


BAD_SETTINGS_SCRIPT = """
import datetime as dt, json
from airflow.sdk import CronTriggerTimetable
from pipeline.airflow_dag import build_dag
from pipeline.examples.taxi_full_pipeline import create_pipeline

cases = {{
    "function, timedelta": dict(pipeline=create_pipeline, schedule=dt.timedelta(hours=6)),
    "timetable": dict(schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"), dag_id="taxi_3am"),
    "lambda": dict(pipeline=lambda: None),
    "image": dict(image="pipeline:latest"),
    "template": dict(overrides={{"train_steps": "{{{{ params.steps }}}}"}}),
    "missing file": dict(pipeline="/nonexistent/pipeline.yaml"),
    "bad override": dict(overrides=["no_equals_sign"]),
    "unknown override": dict(overrides={{"no_such_argument": 1}}),
}}
errors = {{}}
for name, kwargs in cases.items():
    kwargs = {{"pipeline": {pipeline!r}, "root": {root!r}, **kwargs}}
    try:
        dag = build_dag(kwargs.pop("pipeline"), **kwargs)
        errors[name] = [dag.dag_id, len(dag.tasks), type(dag.timetable).__name__]
    except Exception as e:
        errors[name] = [type(e).__name__, str(e)]
print("RESULT " + json.dumps(errors), flush=True)
"""


def test_build_dag_settings(tmp_path):
    pipeline = REPO / "pipeline" / "examples" / "taxi_full_pipeline.py"
    script = BAD_SETTINGS_SCRIPT.format(pipeline=str(pipeline), root=str(tmp_path / "root"))
    (errors,) = _results(_run_script(tmp_path, script, _airflow_env(tmp_path, tmp_path), timeout=120))
    assert errors["function, timedelta"][:2] == ["taxi", 11] and "Delta" in errors["function, timedelta"][2]
    assert errors["timetable"] == ["taxi_3am", 11, "CronTriggerTimetable"]
    assert errors["lambda"][0] == "ValueError" and "create_pipeline" in errors["lambda"][1]
    assert errors["image"][0] == "NotImplementedError" and "node_command" in errors["image"][1]
    assert errors["template"][0] == "NotImplementedError" and "Jinja" in errors["template"][1]
    assert errors["missing file"][0] == "ValueError" and "/nonexistent/pipeline.yaml" in errors["missing file"][1]
    assert errors["bad override"][0] == "ValueError" and "KEY=VALUE" in errors["bad override"][1]
    assert errors["unknown override"][0] == "ValueError" and "no_such_argument" in errors["unknown override"][1]


TAXI_RUN_SCRIPT = """
import datetime as dt, json, shutil, time
from airflow.utils import db
from airflow.dag_processing.dagbag import DagBag

db.initdb()
bag = DagBag(dag_folder={dags!r})
assert not bag.import_errors, bag.import_errors
dag = bag.dags["taxi_retraining"]
for day, span in ((2, 1), (3, 2)):  # a new span lands before each daily run
    shutil.copy({spans!r} + f"/span-{{span}}.csv", {data!r})
    started = time.perf_counter()
    dag_run = dag.test(logical_date=dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc))
    tis = {{ti.task_id: [str(ti.state), ti.try_number] for ti in dag_run.get_task_instances()}}
    print("RESULT " + json.dumps({{"run_id": dag_run.run_id, "state": str(dag_run.state), "tasks": tis,
                                   "seconds": time.perf_counter() - started}}), flush=True)
"""
TAXI_NODES = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "WarmStartResolver",
              "Trainer", "BaselineResolver", "Evaluator", "InfraValidator", "Pusher"]


@pytest.mark.slow
def test_the_example_taxi_dag_trains_pushes_then_retrains_on_the_next_span(tmp_path):
    """airflow/dags/taxi_retraining.py itself, configured by its environment variables: run 1 on
    span 1 pushes version 1; a day later span 2 has landed, and run 2 warm-starts from version 1,
    is judged against it, and pushes version 2. Every node runs as an Airflow task (``run-node``)."""
    dags = REPO / "airflow" / "dags"
    root, data = tmp_path / "root", tmp_path / "incoming"
    data.mkdir()
    env = _airflow_env(tmp_path, dags)
    # 400 steps reach the pipeline's AUC bound (0.9) on span 1 with seed 7, as in test_retraining;
    # the seed makes both runs' verdicts reproducible.
    env.update(TAXI_PIPELINE_ROOT=str(root), TAXI_DATA_ROOT=str(data), TAXI_FILE_PATTERN="span-{SPAN}.csv",
               TAXI_TRAIN_STEPS="400", TAXI_RANDOM_SEED="7")
    script = TAXI_RUN_SCRIPT.format(dags=str(dags), spans=str(REPO / "data" / "taxi_spans"), data=str(data))
    output = _run_script(tmp_path, script, env, timeout=900)
    first, second = _results(output)
    print("taxi dag.test() seconds:", round(first["seconds"], 1), round(second["seconds"], 1))
    for run in (first, second):
        assert run["state"] == "success", output[-6000:]
        assert {t: s for t, (s, _) in run["tasks"].items()} == dict.fromkeys(TAXI_NODES, "success")

    store = MetadataStore(f"sqlite:///{root / 'metadata.sqlite'}")
    runs = [store.run_id_of("taxi", run["run_id"]) for run in (first, second)]
    assert None not in runs and runs[0] != runs[1]
    outputs = [{e["component"]: store.outputs_of(e["id"]) for e in store.executions_of_run(r)} for r in runs]
    assert [_states(store.executions_of_run(r)) for r in runs] == [dict.fromkeys(TAXI_NODES, [COMPLETE])] * 2
    assert [_run_state(store, r) for r in runs] == [COMPLETE, COMPLETE]
    assert [o["ExampleGen"]["examples"].properties["span"] for o in outputs] == [1, 2]

    v1, v2 = (o["Trainer"]["model"] for o in outputs)
    pushed1, pushed2 = (o["Pusher"]["pushed_model"].properties for o in outputs)
    assert pushed1["pushed"] is True and pushed1["model_id"] == v1.id
    assert v1.properties["base_model_id"] is None  # nothing blessed before run 1: a cold start
    # Run 2: the Trainer warm-started from version 1, the Evaluator judged against it, and pushed.
    assert v2.properties["base_model_id"] == v1.id
    assert v2.properties["warm_started_from"].startswith(v1.uri)
    blessing = outputs[1]["Evaluator"]["blessing"].properties
    assert blessing["baseline_model_id"] == v1.id and blessing["verdict"] == "BLESSED", blessing["reason"]
    assert pushed2["pushed"] is True and pushed2["model_id"] == v2.id
    served = sorted(n for n in os.listdir(root / "serving" / "taxi") if n.isdigit())
    assert served == sorted(str(p["version"]) for p in (pushed1, pushed2))
    # Each task's Airflow log holds its component's log lines.
    assert "[Trainer.log]" in _task_section(output, "Trainer", 1)
