"""Kubeflow Pipelines v2 (`pipeline.kubeflow`, real kfp 2.16): the compiled IR YAML of the
taxi pipeline loaded back with kfp's own loader (tasks, dependencies, command lines, run
parameters) and compiled without TensorFlow; runs of a small pipeline with ``kfp.local``'s
SubprocessRunner recorded in the project's metadata store under one run key (a real
PostgreSQL server, skipped when its binaries are absent); a failing node's error surfaced
(SQLite); and the full taxi pipeline run by kfp.local to a pushed model (slow).
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys

import pytest

kfp = pytest.importorskip("kfp", reason="needs the kubeflow extra: pip install -c constraints.txt -e '.[kubeflow]'")

from google.protobuf import json_format  # noqa: E402  (after the importorskip)
from kfp import components  # noqa: E402

from pipeline.metadata import MetadataStore  # noqa: E402
from tests.pipeline import test_metadata_postgres  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAXI_FULL = "pipeline/examples/taxi_full_pipeline.py"
TAXI_YAML = "pipeline/examples/taxi.yaml"
PG = "postgresql+psycopg://pipeline@db:5432/metadata"
IMAGE = "registry.test/estimator-pipeline:7"
RUN_TIMEOUT_S = 120  # a toy run takes ~5 s (one interpreter per task); the margin covers a loaded CI box

# The real PostgreSQL server of the metadata-store tests (skips when its binaries are absent).
server = test_metadata_postgres.server
pg_url = test_metadata_postgres.pg_url

# Every node of the full taxi pipeline and the nodes it waits for: those whose outputs it
# consumes, and ExampleValidator, whose output nothing consumes, before Transform (the gate rule
# of pipeline.dsl.task_dependencies: validation stops the run as the local runner stops).
TAXI_FULL_EDGES = {
    "ExampleGen": set(),
    "StatisticsGen": {"ExampleGen"},
    "SchemaGen": {"StatisticsGen"},
    "ExampleValidator": {"StatisticsGen", "SchemaGen"},
    "Transform": {"ExampleGen", "SchemaGen", "ExampleValidator"},
    "WarmStartResolver": {"Transform"},
    "Trainer": {"Transform", "SchemaGen", "StatisticsGen", "WarmStartResolver"},
    "BaselineResolver": {"Trainer"},
    "Evaluator": {"ExampleGen", "Trainer", "BaselineResolver"},
    "InfraValidator": {"Trainer", "ExampleGen"},
    "Pusher": {"Trainer", "Evaluator", "InfraValidator"},
}

TOY_PIPELINE = '''
from pipeline.dsl import Pipeline
from tests.pipeline.toy_components import Add, SchemaOf, Source


def create_pipeline(*, root, metadata=None, fail=False):
    first, second = Source(1, id="SourceA"), Source(2, id="SourceB")
    add = Add(first.outputs["examples"], baseline=second.outputs["examples"], add=10, fail=fail)
    schema = SchemaOf(add.outputs["statistics"])
    return Pipeline("toy-kfp", root=root, components=[first, second, add, schema], metadata=metadata)
'''
TOY_EDGES = {"SourceA": set(), "SourceB": set(), "Add": {"SourceA", "SourceB"}, "SchemaOf": {"Add"}}


def _bounded(args, timeout=RUN_TIMEOUT_S):
    """Runs ``python args...`` in the repository root in its own process group; kills the group
    when it outlives ``timeout`` or the test fails."""
    process = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group: kfp.local's task processes too
        process.wait()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def _ir(path):
    """(pipeline spec, {node id: task spec}, {node id: container dict}) of an IR YAML, via kfp's loader."""
    spec = components.load_component_from_file(str(path)).pipeline_spec
    tasks = {task.task_info.name: task for task in _node_dag(spec).tasks.values()}
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    containers = {}
    for node, task in tasks.items():
        label = spec.components[task.component_ref.name].executor_label
        containers[node] = executors[label]["container"]
    return spec, tasks, containers


def _node_dag(spec):
    """The DAG holding the node tasks: the exit handler's sub-DAG of a container pipeline, else the root."""
    handler = [t for t in spec.root.dag.tasks.values() if t.task_info.name == "pipeline-nodes"]
    return spec.components[handler[0].component_ref.name].dag if handler else spec.root.dag


def _edges(spec, tasks):
    names = {key: task.task_info.name for key, task in _node_dag(spec).tasks.items()}
    return {node: {names[d] for d in task.dependent_tasks} for node, task in tasks.items()}


def test_the_taxi_pipeline_compiles_to_one_container_task_per_node_without_tensorflow(tmp_path):
    full, yaml_ir = tmp_path / "taxi-full.yaml", tmp_path / "taxi-yaml.yaml"
    script = (
        "import json, sys\n"
        "from pipeline.kubeflow import main\n"
        f"assert main(['compile', {TAXI_FULL!r}, '--output', {str(full)!r}, '--image', {IMAGE!r},"
        f" '--metadata', {PG!r}, '--retries', '2', '--set', 'train_steps=300']) == 0\n"
        f"assert main(['compile', {TAXI_YAML!r}, '-o', {str(yaml_ir)!r}, '--root', '/mnt/shared/taxi',"
        " '--beam-arg', '--direct_num_workers=2']) == 0\n"
        "heavy = {'tensorflow', 'apache_beam', 'tensorflow_transform', 'tensorflow_model_analysis'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n")
    done = _bounded(["-c", script], timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []  # compiling loaded no TensorFlow, Beam, TFT, TFMA
    assert "note: no PostgreSQL --metadata URL" in done.stderr  # said for the taxi.yaml compile only
    assert done.stderr.count("note: no PostgreSQL") == 1

    spec, tasks, containers = _ir(full)
    assert spec.pipeline_info.name == "taxi"
    assert _edges(spec, tasks) == TAXI_FULL_EDGES
    params = spec.root.input_definitions.parameters
    assert (params["root"].default_value.string_value, params["metadata"].default_value.string_value) == (
        "/mnt/pipeline/taxi", PG)
    for node, task in tasks.items():
        assert containers[node]["image"] == IMAGE
        assert containers[node]["command"] == ["python", "-m", "pipeline", "run-node"]
        assert containers[node]["args"] == [
            TAXI_FULL, "--node", node, "--run-key", "{{$.inputs.parameters['run_key']}}",
            "--root", "{{$.inputs.parameters['root']}}", "--metadata", "{{$.inputs.parameters['metadata']}}",
            "--set", "train_steps=300"]
        assert containers[node]["env"] == [{"name": "PYTHONUNBUFFERED", "value": "1"}]
        inputs = task.inputs.parameters
        assert inputs["run_key"].runtime_value.constant.string_value == "{{$.pipeline_job_uuid}}"  # KFP's run id
        assert (inputs["root"].component_input_parameter, inputs["metadata"].component_input_parameter) == (
            "pipelinechannel--root", "pipelinechannel--metadata")  # the run parameters, through the exit handler
        assert not task.caching_options.enable_cache  # the project's store caches, not KFP
        assert task.retry_policy.max_retry_count == 2
    # The exit handler's task marks the store's run once every node task has ended, whatever their outcome.
    root_tasks = {t.task_info.name: t for t in spec.root.dag.tasks.values()}
    assert set(root_tasks) == {"pipeline-nodes", "finish-run"}
    finish = root_tasks["finish-run"]
    assert finish.trigger_policy.strategy == finish.trigger_policy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
    finish_container = json_format.MessageToDict(spec.deployment_spec)["executors"][
        spec.components[finish.component_ref.name].executor_label]["container"]
    assert finish_container["command"] == ["python", "-m", "pipeline", "finish-run"]
    assert finish_container["args"] == [
        TAXI_FULL, "--run-key", "{{$.inputs.parameters['run_key']}}", "--root", "{{$.inputs.parameters['root']}}",
        "--metadata", "{{$.inputs.parameters['metadata']}}", "--set", "train_steps=300"]
    assert finish.inputs.parameters["run_key"].runtime_value.constant.string_value == "{{$.pipeline_job_uuid}}"

    spec, tasks, containers = _ir(yaml_ir)
    assert spec.pipeline_info.name == "taxi-yaml"
    assert set(tasks) == set(TAXI_FULL_EDGES)  # the same nodes, resolvers included
    assert _edges(spec, tasks)["Transform"] == {"ExampleGen", "SchemaGen", "ExampleValidator"}
    assert containers["Pusher"]["image"] == "estimator-pipeline:0.1.0"  # the documented default
    assert containers["Pusher"]["args"][:3] == [TAXI_YAML, "--node", "Pusher"]
    assert containers["Pusher"]["args"][-1] == "--beam-arg=--direct_num_workers=2"
    params = spec.root.input_definitions.parameters
    assert (params["root"].default_value.string_value, params["metadata"].default_value.string_value) == (
        "/mnt/shared/taxi", "")
    assert not tasks["Pusher"].HasField("retry_policy")


def test_bad_arguments_are_named(tmp_path, capsys):
    from pipeline.kubeflow import compile_pipeline, main

    outside = tmp_path / "p.py"
    outside.write_text(TOY_PIPELINE)
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["compile", str(outside), "--root", str(tmp_path), "-o", str(tmp_path / "x.yaml")]) == 2
        assert "outside the current directory, so its path in the image is unknown" in capsys.readouterr().err
        assert main(["compile", str(outside), "--root", str(tmp_path), "-o", str(tmp_path / "x.yaml"),
                     "--file-in-image", "/pipelines/p.py"]) == 0
        with pytest.raises(ValueError, match="package_path='x.json'; expected a .yaml file"):
            compile_pipeline(str(outside), "x.json", root=str(tmp_path))
        with pytest.raises(ValueError, match="mode='docker'; expected one of"):
            compile_pipeline(str(outside), str(tmp_path / "y.yaml"), mode="docker", root=str(tmp_path))
        with pytest.raises(ValueError, match="retries=-1; expected an int >= 0"):
            compile_pipeline(TAXI_YAML, str(tmp_path / "y.yaml"), retries=-1)
    finally:
        os.chdir(cwd)
    _, _, containers = _ir(tmp_path / "x.yaml")
    assert containers["Add"]["args"][:3] == ["/pipelines/p.py", "--node", "Add"]


def test_an_object_store_root_compiles_with_a_metadata_url_and_is_refused_without(tmp_path):
    from pipeline.kubeflow import compile_pipeline

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        compile_pipeline(TAXI_YAML, str(tmp_path / "gs.yaml"), image=IMAGE, root="gs://bucket/taxi", metadata=PG)
        with pytest.raises(ValueError, match=r"root='gs://bucket/taxi'\) needs metadata=URL"):
            compile_pipeline(TAXI_YAML, str(tmp_path / "no.yaml"), image=IMAGE, root="gs://bucket/taxi")
    finally:
        os.chdir(cwd)
    spec, _, containers = _ir(tmp_path / "gs.yaml")
    parameters = json_format.MessageToDict(spec.root.input_definitions)["parameters"]
    assert parameters["root"]["defaultValue"] == "gs://bucket/taxi"
    assert parameters["metadata"]["defaultValue"] == PG


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")  # kfp's image check
def test_kfp_local_refuses_the_container_tasks(tmp_path):
    """Why the local mode exists: kfp 2.16's SubprocessRunner runs no container component."""
    from kfp import local

    from pipeline.kubeflow import build_kfp_pipeline

    (tmp_path / "toy.py").write_text(TOY_PIPELINE)
    container_pipeline = build_kfp_pipeline(str(tmp_path / "toy.py"), root=str(tmp_path / "root"),
                                            file_in_image="toy.py")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"))
    with pytest.raises(RuntimeError, match="only supports running Lightweight Python Components. You are "
                                           "attempting to run a Container Component"):
        container_pipeline(root=str(tmp_path / "root"), metadata="")


def test_a_kfp_local_run_records_every_node_under_one_run_key(tmp_path, pg_url):
    """On PostgreSQL, the store a cluster's pods share (each task is another process)."""
    metadata_url = pg_url
    pipeline_file = tmp_path / "toy_pipeline.py"
    pipeline_file.write_text(TOY_PIPELINE)
    root = tmp_path / "root"
    done = _bounded(["-m", "pipeline.kubeflow", "run-local", str(pipeline_file), "--root", str(root),
                     "--metadata", metadata_url])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    match = re.search(r"^run (\d+) \(key '(\d+)'\): (.*)$", done.stdout, re.M)
    assert match, done.stdout[-2000:]
    run_id, run_key = int(match[1]), match[2]  # kfp.local's run id: a random number
    # kfp.local runs the two sources in either order (neither depends on the other).
    assert sorted(match[3].split(", ")) == ["Add=COMPLETE", "SchemaOf=COMPLETE", "SourceA=COMPLETE",
                                            "SourceB=COMPLETE"]

    # Each kfp task ran the container's command line, with KFP's run id as the run key.
    for node in TOY_EDGES:
        assert (f"run-node: {pipeline_file} --node {node} --run-key {run_key} --root {root} "
                f"--metadata {metadata_url}") in done.stdout
    store = MetadataStore(metadata_url)
    [run] = store.list_runs()
    assert (run["id"], run["run_key"], run["pipeline"], run["state"]) == (run_id, run_key, "toy-kfp", "COMPLETE")
    executions = {e["component"]: e for e in store.executions_of_run(run_id)}
    assert set(executions) == set(TOY_EDGES) and {e["state"] for e in executions.values()} == {"COMPLETE"}
    statistics = store.outputs_of(executions["Add"]["id"])["statistics"]
    source_a = store.outputs_of(executions["SourceA"]["id"])["examples"]
    assert statistics.properties["total"] == 11  # SourceA's 1 + 10
    assert statistics.properties["inputs"] == [source_a.id]  # read from the same run
    assert os.path.isfile(root / "logs" / str(run_id) / "SchemaOf.log")


def test_a_failing_node_fails_the_kfp_local_run_with_the_components_error(tmp_path):
    pipeline_file = tmp_path / "toy_pipeline.py"
    pipeline_file.write_text(TOY_PIPELINE)
    root = tmp_path / "root"
    done = _bounded(["-m", "pipeline.kubeflow", "run-local", str(pipeline_file), "--root", str(root),
                     "--set", "fail=true"])
    assert done.returncode == 1
    log = root / "logs" / "1" / "Add.log"
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: Add failed: Add got fail=True; expected False. How to fix: unset it. (full log: {log})")
    # The kfp task itself failed with run-node's error line (what a KFP UI shows in the task's log).
    assert ("RuntimeError: run-node --node Add exited with status 1: error: Add failed: Add got fail=True"
            in done.stdout)
    assert "Executing task 'schemaof'" not in re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)  # never started
    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    [run] = store.list_runs()
    assert run["state"] == "FAILED" and run["error"].startswith("Add failed: Add got fail=True")
    states = {e["component"]: e["state"] for e in store.executions_of_run(run["id"])}
    assert states == {"SourceA": "COMPLETE", "SourceB": "COMPLETE", "Add": "FAILED"}
    assert log.is_file()


@pytest.mark.slow
def test_kfp_local_runs_the_full_taxi_pipeline_to_a_pushed_model(tmp_path):
    """The bundled taxi pipeline, one kfp.local task (an interpreter running ``run-node``) per node,
    to a blessed model pushed under the root and loaded back."""
    import tensorflow as tf

    root = tmp_path / "root"
    # 400 steps with seed 7 clear the pipeline's AUC bound (0.9), as in test_retraining.
    done = _bounded(["-m", "pipeline.kubeflow", "run-local", TAXI_FULL, "--root", str(root),
                     "--set", "train_steps=400", "--set", "random_seed=7"], timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    match = re.search(r"^run (\d+) \(key '(\d+)'\): (.*)$", done.stdout, re.M)
    assert match, done.stdout[-2000:]
    states = dict(item.split("=") for item in match[3].split(", "))
    assert set(states) == set(TAXI_FULL_EDGES) and set(states.values()) == {"COMPLETE"}
    store = MetadataStore(f"sqlite:///{root}/metadata.sqlite")
    [run] = store.list_runs()
    assert (run["run_key"], run["state"]) == (match[2], "COMPLETE")
    executions = {e["component"]: e for e in store.executions_of_run(run["id"])}
    blessing = store.outputs_of(executions["Evaluator"]["id"])["blessing"].properties
    assert blessing["verdict"] == "BLESSED", blessing["reason"]
    pushed = store.outputs_of(executions["Pusher"]["id"])["pushed_model"].properties
    assert pushed["pushed"] is True
    assert os.path.dirname(pushed["pushed_destination"]) == str(root / "serving" / "taxi")
    served = tf.saved_model.load(pushed["pushed_destination"])
    assert "serving_default" in served.signatures
