"""`pipeline.launcher.launch_node`: one node of one run, inputs from the same run, and
``python -m pipeline run-node``; the schema migration of a store made before it was versioned."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.dsl import Pipeline
from pipeline.launcher import PipelineRunError, launch_node
from pipeline.metadata import SCHEMA_REVISION, MetadataStore
from tests.pipeline.toy_components import Add, Source

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNVERSIONED_COMMIT = "09270f9"  # the last commit whose MetadataStore made stores without Alembic

PIPELINE_FILE = '''
from pipeline.dsl import Pipeline
from tests.pipeline.toy_components import Add, Source


def create_pipeline(*, root, metadata=None, value=1, fail=False):
    source = Source(value)
    add = Add(source.outputs["examples"], add=10, fail=fail)
    return Pipeline("toy", root=root, components=[source, add], metadata=metadata)
'''


def _toy(root, value=1, *, metadata=None):
    source = Source(value)
    return Pipeline("toy", str(root), [source, Add(source.outputs["examples"], add=10)], metadata=metadata)


def test_inputs_come_from_the_same_run_not_the_latest_published(tmp_path):
    first = launch_node(_toy(tmp_path, 1), "Source", "run-a")
    launch_node(_toy(tmp_path, 2), "Source", "run-b")  # published later: the latest Source output
    add_a = launch_node(_toy(tmp_path, 1), "Add", "run-a")
    add_b = launch_node(_toy(tmp_path, 2), "Add", "run-b")
    assert add_a.outputs["statistics"].properties["total"] == 11
    assert add_a.outputs["statistics"].properties["inputs"] == [first.outputs["examples"].id]
    assert add_b.outputs["statistics"].properties["total"] == 12
    assert add_a.run_id == first.run_id != add_b.run_id
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    assert [r["run_key"] for r in store.list_runs()] == ["run-b", "run-a"]
    assert os.path.isfile(os.path.join(tmp_path, "logs", str(add_a.run_id), "Add.log"))


def test_a_producer_that_has_not_completed_in_the_run_is_named(tmp_path):
    launch_node(_toy(tmp_path), "Source", "other-run")
    with pytest.raises(PipelineRunError, match="input 'examples' needs Source.examples, which run 'new' of "
                       "pipeline 'toy' has not produced .* How to fix: launch 'Source' with run key 'new'"):
        launch_node(_toy(tmp_path), "Add", "new")


def test_a_relaunched_node_comes_from_the_cache_and_joins_the_same_run(tmp_path):
    executed = launch_node(_toy(tmp_path), "Source", "k")
    again = launch_node(_toy(tmp_path), "Source", "k")
    assert (executed.state, again.state) == ("COMPLETE", "CACHED")
    assert again.run_id == executed.run_id and again.outputs["examples"].id == executed.outputs["examples"].id
    assert launch_node(_toy(tmp_path), "Source", "k", enable_cache=False).state == "COMPLETE"


def test_run_keys_are_unique_per_pipeline(tmp_path):
    store = MetadataStore(f"sqlite:///{tmp_path}/m.sqlite")
    store.start_run("toy", run_key="k")
    with pytest.raises(ValueError, match="MetadataStore got run_key='k'; pipeline 'toy' already has a run"):
        store.start_run("toy", run_key="k")
    assert store.ensure_run("toy", "k") == store.run_id_of("toy", "k")
    assert store.start_run("other", run_key="k") != store.run_id_of("toy", "k")


def test_the_local_runner_gives_each_run_a_fresh_key(tmp_path):
    from pipeline.runner import LocalRunner

    first, second = LocalRunner().run(_toy(tmp_path)), LocalRunner().run(_toy(tmp_path))
    assert first.run_key.startswith("local-") and first.run_key != second.run_key
    assert second.cached == ["Source", "Add"]


def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_run_node_cli_exit_codes_and_one_line_errors(tmp_path):
    pipeline_file = tmp_path / "toy_pipeline.py"
    pipeline_file.write_text(PIPELINE_FILE)
    root = str(tmp_path / "root")
    common = [str(pipeline_file), "--root", root, "--run-key", "manual__1"]
    done = _cli("run-node", *common, "--node", "Source", "--set", "value=5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Source: COMPLETE (run 1, key 'manual__1', execution 1): examples=")
    cached = _cli("run-node", *common, "--node", "Source", "--set", "value=5")
    assert cached.returncode == 0 and cached.stdout.startswith("Source: CACHED (run 1,"), cached.stderr
    failed = _cli("run-node", *common, "--node", "Add", "--set", "value=5", "--set", "fail=true")
    assert failed.returncode == 1
    [line] = failed.stderr.strip().splitlines()
    assert line.startswith("error: Add failed: Add got fail=True; expected False.") and "full log: " in line
    unknown = _cli("run-node", *common, "--node", "Nope")
    assert unknown.returncode == 2 and "got component id 'Nope'" in unknown.stderr
    # An exit handler's finish-run marks the run FAILED, naming the failed node.
    finished = _cli("finish-run", str(pipeline_file), "--root", root, "--run-key", "manual__1", "--set", "value=5")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == ("run 1 (key 'manual__1') of pipeline 'toy': FAILED: Add failed: Add got "
                                       "fail=True; expected False. How to fix: unset it.")
    nothing = _cli("finish-run", str(pipeline_file), "--root", root, "--run-key", "never")
    assert nothing.returncode == 0 and "no node of it started; nothing to mark" in nothing.stdout


def test_finish_run_marks_complete_only_when_every_node_completed_or_came_from_the_cache(tmp_path):
    from pipeline.launcher import finish_run

    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    launch_node(_toy(tmp_path), "Source", "partial")
    partial = finish_run(_toy(tmp_path), "partial")  # the orchestrator skipped Add (or its task died first)
    assert (partial.state, partial.error) == ("FAILED", "nodes ['Add'] did not run")
    for node in ("Source", "Add"):
        launch_node(_toy(tmp_path), node, "whole")  # Source from the cache
    whole = finish_run(_toy(tmp_path), "whole")
    assert (whole.state, whole.error) == ("COMPLETE", None)
    states = {r["run_key"]: (r["state"], r["error"]) for r in store.list_runs()}
    assert states == {"partial": ("FAILED", "nodes ['Add'] did not run"), "whole": ("COMPLETE", None)}
    assert finish_run(_toy(tmp_path), "never") is None


def test_a_store_made_before_the_schema_was_versioned_is_upgraded_keeping_its_rows(tmp_path):
    """A store written by the MetadataStore of `UNVERSIONED_COMMIT` (no alembic_version table)."""
    old = tmp_path / "old"
    (old / "pipeline").mkdir(parents=True)
    try:
        source = subprocess.run(["git", "show", f"{UNVERSIONED_COMMIT}:pipeline/metadata.py"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"needs the git history of the repository for the old metadata.py: {e}")
    (old / "pipeline" / "__init__.py").write_text("")
    (old / "pipeline" / "metadata.py").write_text(source)
    url = f"sqlite:///{tmp_path}/metadata.sqlite"
    make_old_store = f"""
from components.artifacts import Examples
from pipeline.metadata import MetadataStore
store = MetadataStore({url!r})
run = store.start_run("toy")
execution = store.start_execution(run, "toy", "Source", "Source", fingerprint="f", parameters="{{}}")
out = {{"examples": Examples(uri="/data/1")}}
store.register_outputs(execution, "toy", "Source", out)
store.publish(execution, out)
store.finish_run(run, "COMPLETE")
store.start_run("toy")  # left RUNNING by a process that is gone
"""
    subprocess.run([sys.executable, "-c", make_old_store], cwd=REPO, check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join([str(old), REPO])})
    store = MetadataStore(url)
    assert store.schema_revision() == SCHEMA_REVISION
    assert [(r["id"], r["state"], r["run_key"]) for r in store.list_runs()] == [(2, "RUNNING", None),
                                                                                 (1, "COMPLETE", None)]
    assert store.published("toy", "Source", "examples")[0].uri == "/data/1"
    assert store.mark_abandoned("toy") == 1  # no heartbeat from before: expired since it started
    assert launch_node(_toy(tmp_path / "root", metadata=url), "Source", "after").state == "COMPLETE"


def test_the_schema_revision_is_the_head_of_the_migrations():
    from pipeline.migrations import head

    assert head() == SCHEMA_REVISION


def test_a_dead_pid_proves_nothing_under_another_kernel_or_pid_namespace(tmp_path):
    from pipeline.metadata import executions, machine_identity, runs

    store = MetadataStore(f"sqlite:///{tmp_path}/m.sqlite")
    here, elsewhere = store.start_run("toy"), store.start_run("toy")
    execution = store.start_execution(elsewhere, "toy", "Add", "Add", fingerprint="f", parameters="{}")
    with store.engine.begin() as conn:  # both pids are dead here; only one ran under this machine_identity
        conn.execute(runs.update().values(pid=2**22 + 12345))
        conn.execute(runs.update().where(runs.c.id == elsewhere).values(node="other-container:boot:pidns"))
        conn.execute(executions.update().values(pid=2**22 + 12345, node="other-container:boot:pidns"))
    assert machine_identity() and store.mark_abandoned("toy") == 1
    assert {r["id"]: r["state"] for r in store.list_runs()} == {here: "ABANDONED", elsewhere: "RUNNING"}
    assert store.execution_state(execution) == "RUNNING"  # its heartbeat has not expired
