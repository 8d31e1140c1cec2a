"""The execution's resumable work dir: kept after a failure for the next execution with the same
fingerprint, removed once an execution is published, never shared with another fingerprint or a
live execution. (A real kill -9 of the Trainer: tests/pipeline/test_retraining.py.)"""

from __future__ import annotations

import dataclasses
import os

import pytest

from components.artifacts import ExampleStatistics
from components.base import Component, ComponentError
from pipeline import LocalRunner, MetadataStore, Pipeline, PipelineRunError


@dataclasses.dataclass(frozen=True)
class AttemptParams:
    succeed_at: int = 2
    note: str = ""


class Attempts(Component):
    """Counts its attempts in the work dir; fails until the count reaches ``succeed_at``."""

    OUTPUTS = {"statistics": ExampleStatistics}
    PARAMETERS = AttemptParams

    def __init__(self, *, succeed_at: int = 2, note: str = ""):
        super().__init__(inputs={}, parameters=AttemptParams(succeed_at, note))

    def executor(self):
        def run(ctx):
            path = os.path.join(ctx.work_dir, "attempts")
            count = int(open(path).read()) + 1 if os.path.exists(path) else 1
            with open(path, "w") as f:
                f.write(str(count))
            if count < ctx.parameters.succeed_at:
                raise ComponentError(f"attempt {count}")
            ctx.outputs["statistics"].properties.update(attempts=count, work_dir=ctx.work_dir)
        return run


def _run(root, **kwargs):
    enable_cache = kwargs.pop("enable_cache", True)
    return LocalRunner().run(Pipeline("work", str(root), [Attempts(**kwargs)], enable_cache=enable_cache))


def _work_dirs(root):
    base = os.path.join(str(root), ".work", "Attempts")
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def _attempts(root, name):
    with open(os.path.join(str(root), ".work", "Attempts", name, "attempts")) as f:
        return int(f.read())


def test_a_failed_execution_leaves_its_work_dir_to_the_next_with_the_same_fingerprint(tmp_path):
    with pytest.raises(PipelineRunError, match="attempt 1"):
        _run(tmp_path)
    [name] = _work_dirs(tmp_path)
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    failed = store.executions_of_run(store.list_runs()[0]["id"])[0]
    assert name == failed["fingerprint"]  # keyed by the cache key, not by the execution
    result = _run(tmp_path)
    stats = result.outputs["Attempts"]["statistics"]
    assert stats.properties["attempts"] == 2  # it resumed from the failed execution's state
    assert stats.properties["work_dir"].endswith(name)
    assert _work_dirs(tmp_path) == []  # removed once published


def test_another_fingerprint_starts_afresh_and_removes_the_stale_work_dir(tmp_path):
    with pytest.raises(PipelineRunError, match="attempt 1"):
        _run(tmp_path)
    [stale] = _work_dirs(tmp_path)
    with pytest.raises(PipelineRunError, match="attempt 1"):
        _run(tmp_path, note="changed parameters")
    [fresh] = _work_dirs(tmp_path)
    assert fresh != stale


def test_no_cache_starts_from_an_empty_work_dir(tmp_path):
    with pytest.raises(PipelineRunError, match="attempt 1"):
        _run(tmp_path)
    with pytest.raises(PipelineRunError, match="attempt 1"):
        _run(tmp_path, enable_cache=False)


def test_a_live_execution_keeps_its_work_dir_and_the_other_gets_a_private_one(tmp_path):
    with pytest.raises(PipelineRunError, match="attempt 1"):
        _run(tmp_path)
    [shared] = _work_dirs(tmp_path)
    # Another run of this process (alive, so never marked ABANDONED) is executing the same node
    # with the same fingerprint.
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    live = store.start_execution(store.start_run("work"), "work", "Attempts", "Attempts",
                                 fingerprint=shared, parameters="{}")
    with pytest.raises(PipelineRunError, match="attempt 1") as failure:
        _run(tmp_path)
    private = f"{shared}-{failure.value.execution_id}"
    assert _work_dirs(tmp_path) == sorted([shared, private])
    assert _attempts(tmp_path, shared) == 1  # untouched
    store.fail_execution(live, "done")
    result = _run(tmp_path)  # the shared dir is free again: attempt 2 there
    assert result.outputs["Attempts"]["statistics"].properties["attempts"] == 2
    assert _work_dirs(tmp_path) == []


def test_scratch_of_killed_and_failed_executions_is_removed(tmp_path):
    """``<root>/.temp/<id>`` of an execution that is not running is removed by the next run;
    a failed execution removes its own at once (its outputs are kept as failed-<id>)."""
    import os

    from pipeline import LocalRunner, Pipeline
    from pipeline.metadata import MetadataStore
    from tests.pipeline.toy_components import Add, Source

    root = str(tmp_path / "root")
    killed = os.path.join(root, ".temp", "999")  # an execution id no live run holds
    os.makedirs(killed)
    source = Source(1)
    failing = Add(source.outputs["examples"], fail=True)
    store_url = f"sqlite:///{tmp_path}/m.sqlite"
    try:
        LocalRunner().run(Pipeline("scratch", root, [source, failing], metadata=store_url))
    except Exception:  # noqa: BLE001 - Add(fail=True) fails by design
        pass
    assert not os.path.exists(killed)
    assert os.listdir(os.path.join(root, ".temp")) == []
    assert MetadataStore(store_url).list_runs()[0]["state"] == "FAILED"
