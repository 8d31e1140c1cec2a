import os

import pytest

from pipeline import LocalRunner, MetadataStore, Pipeline, PipelineRunError
from tests.pipeline.toy_components import Add, SchemaOf, Source


def _pipeline(root, *, value=1, add=0, fail=False, span=0, **kwargs):
    source = Source(value, span=span)
    add_ = Add(source.outputs["examples"], add=add, fail=fail)
    schema = SchemaOf(add_.outputs["statistics"])
    return Pipeline("toy", str(root), [schema, add_, source], **kwargs)


def test_runs_in_topological_order_and_publishes_under_component_output_execution(tmp_path):
    result = LocalRunner().run(_pipeline(tmp_path, value=3, add=4))
    assert result.executed == ["Source", "Add", "SchemaOf"]
    stats = result.outputs["Add"]["statistics"]
    assert stats.properties["total"] == 7
    assert os.path.dirname(stats.uri) == os.path.join(str(tmp_path), "Add", "statistics")
    assert os.path.basename(stats.uri).isdigit()
    assert not [n for n in os.listdir(os.path.dirname(stats.uri)) if n.startswith(".tmp")]


def test_second_run_is_all_cached_and_parameter_change_reruns_downstream_only(tmp_path):
    first = LocalRunner().run(_pipeline(tmp_path))
    second = LocalRunner().run(_pipeline(tmp_path))
    assert second.executed == []
    assert second.cached == ["Source", "Add", "SchemaOf"]
    assert second.outputs["SchemaOf"]["schema"].id == first.outputs["SchemaOf"]["schema"].id
    third = LocalRunner().run(_pipeline(tmp_path, add=5))
    assert third.cached == ["Source"]
    assert third.executed == ["Add", "SchemaOf"]


def test_enable_cache_false_reruns_everything(tmp_path):
    LocalRunner().run(_pipeline(tmp_path))
    again = LocalRunner().run(_pipeline(tmp_path, enable_cache=False))
    assert again.executed == ["Source", "Add", "SchemaOf"]


def test_failure_records_failed_execution_and_is_not_cached(tmp_path):
    with pytest.raises(PipelineRunError, match="Add failed: Add got fail=True; expected False"):
        LocalRunner().run(_pipeline(tmp_path, fail=True))
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    run = store.list_runs()[0]
    assert run["state"] == "FAILED"
    assert run["executions"] == {"COMPLETE": 1, "FAILED": 1}
    failed = [e for e in store.executions_of_run(run["id"]) if e["state"] == "FAILED"][0]
    assert "fail=True" in failed["error"]
    result = LocalRunner().run(_pipeline(tmp_path))
    assert result.cached == ["Source"]  # resume: finished components come from the cache
    assert result.executed == ["Add", "SchemaOf"]


def test_partial_runs_from_and_to(tmp_path):
    LocalRunner().run(_pipeline(tmp_path))
    only_source = LocalRunner().run(_pipeline(tmp_path, value=2), to_nodes=["Source"])
    assert list(only_source.states) == ["Source"]
    tail = LocalRunner().run(_pipeline(tmp_path, value=2, add=1), from_nodes=["Add"])
    assert list(tail.states) == ["Add", "SchemaOf"]
    assert tail.outputs["Add"]["statistics"].properties["total"] == 3  # latest Source (value=2)


def test_partial_run_without_upstream_output_names_the_missing_node(tmp_path):
    with pytest.raises(PipelineRunError, match="needs Source.examples, which has never been published"):
        LocalRunner().run(_pipeline(tmp_path), from_nodes=["Add"])


def test_unknown_node_in_partial_run(tmp_path):
    with pytest.raises(ValueError, match="got component id 'Nope'; expected one of"):
        LocalRunner().run(_pipeline(tmp_path), from_nodes=["Nope"])


def test_previous_span_and_span_window_resolution(tmp_path):
    def build(span):
        source = Source(span, span=span)
        window = Add(source.outputs["examples"].span_window(2),
                     baseline=source.outputs["examples"].previous_span(), id="Window")
        return Pipeline("spans", str(tmp_path), [source, window])

    first = LocalRunner().run(build(1))
    assert first.outputs["Window"]["statistics"].properties["baseline"] == []
    LocalRunner().run(build(2))
    third = LocalRunner().run(build(3))
    props = third.outputs["Window"]["statistics"].properties
    assert props["total"] == 3 + 2
    assert len(props["inputs"]) == 2 and len(props["baseline"]) == 1


def test_lineage_walks_back_to_the_source(tmp_path):
    result = LocalRunner().run(_pipeline(tmp_path))
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    schema = result.outputs["SchemaOf"]["schema"]
    tree = store.lineage(schema.id)
    assert tree["execution"]["component"] == "SchemaOf"
    (key, stats), = tree["inputs"]
    assert key == "statistics"
    (_, examples), = stats["inputs"]
    assert examples["artifact"].TYPE_NAME == "Examples"
    assert store.find_artifact(schema.uri).id == schema.id
    with pytest.raises(ValueError, match="no artifact has that id or URI"):
        store.find_artifact("/no/such/uri")
    with pytest.raises(ValueError, match="no such artifact"):
        store.artifact(999)


def test_bad_metadata_url(tmp_path):
    with pytest.raises(ValueError, match="expected a SQLAlchemy URL"):
        MetadataStore("not a url")


def test_abandoned_runs_are_marked(tmp_path):
    store = MetadataStore(f"sqlite:///{tmp_path}/m.sqlite")
    run_id = store.start_run("p")
    with store.engine.begin() as conn:
        from pipeline.metadata import runs
        conn.execute(runs.update().where(runs.c.id == run_id).values(pid=2**22 + 12345))
    assert store.mark_abandoned("p") == 1
    assert store.list_runs()[0]["state"] == "ABANDONED"


def test_executions_record_parameters_timing_fingerprint_and_cache_source(tmp_path):
    import json

    LocalRunner().run(_pipeline(tmp_path, value=3, add=4))
    LocalRunner().run(_pipeline(tmp_path, value=3, add=4))
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    first, second = reversed(store.list_runs())
    executed = {e["component"]: e for e in store.executions_of_run(first["id"])}
    cached = {e["component"]: e for e in store.executions_of_run(second["id"])}
    add = executed["Add"]
    assert json.loads(add["parameters"]) == {"__type__": "AddParams", "add": 4, "fail": False}
    assert add["started"] <= add["finished"] and len(add["fingerprint"]) == 64
    assert cached["Add"]["state"] == "CACHED" and cached["Add"]["cached_from"] == add["id"]
    assert cached["Add"]["fingerprint"] == add["fingerprint"]


def test_remaining_error_messages(tmp_path):
    from components.artifacts import artifact_class
    from components.base import ComponentError, ExecutionContext
    from tests.pipeline.toy_components import Add, Source

    with pytest.raises(ValueError, match="artifact_class got type_name='Nope'; expected one of"):
        artifact_class("Nope")
    ctx = ExecutionContext(component_id="Add", execution_id=1, inputs={}, outputs={}, parameters=None,
                           beam_pipeline_args=(), temp_dir=str(tmp_path))
    with pytest.raises(ComponentError, match="Add got no artifact for input 'examples'"):
        ctx.input("examples")
    source = Source()
    add = Add(source.outputs["examples"])
    add.inputs["examples"].policy = "sideways"
    with pytest.raises(ValueError, match="Launcher got channel policy='sideways'"):
        LocalRunner().run(Pipeline("p", str(tmp_path), [source, add]))


class _Quarantines(Add):
    """Writes a quarantine file into its output, then fails with a message naming it (as ExampleGen does)."""

    def executor(self):
        def run(ctx):
            from components.base import ComponentError

            path = os.path.join(ctx.outputs["statistics"].uri, "quarantine.csv")
            with open(path, "w") as f:
                f.write("bad,row\n")
            raise ComponentError(f"3 rows quarantined, more than allowed: see {path}. How to fix: clean them.")
        return run


def test_a_failure_message_names_where_the_failed_output_is_kept_not_a_temp_dir(tmp_path):
    source = Source(1)
    failing = _Quarantines(source.outputs["examples"], id="Check")
    with pytest.raises(PipelineRunError) as raised:
        LocalRunner().run(Pipeline("toy", str(tmp_path), [source, failing]))
    message = str(raised.value)
    assert ".tmp-" not in message
    kept = os.path.join(str(tmp_path), "Check", "statistics", f"failed-{raised.value.execution_id}")
    assert f"see {kept}/quarantine.csv" in message
    assert message.endswith("(kept until the next execution of Check ends)")
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    error = store.executions_of_run(store.list_runs()[0]["id"])[-1]["error"]
    assert ".tmp-" not in error and kept in error

    # The next run's cleanup of temp dirs keeps it, so the message stays true ...
    with pytest.raises(PipelineRunError) as again:
        LocalRunner().run(Pipeline("toy", str(tmp_path), [source, failing]))
    assert not os.path.exists(kept)  # ... until that node's next execution ends
    newer = os.path.join(str(tmp_path), "Check", "statistics", f"failed-{again.value.execution_id}")
    assert open(os.path.join(newer, "quarantine.csv")).read() == "bad,row\n"
    LocalRunner().run(Pipeline("toy", str(tmp_path), [source, Add(source.outputs["examples"], id="Check")]))
    assert [n for n in os.listdir(os.path.join(str(tmp_path), "Check", "statistics")) if not n.isdigit()] == []


def test_a_failed_execution_with_empty_outputs_leaves_nothing_behind(tmp_path):
    with pytest.raises(PipelineRunError):
        LocalRunner().run(_pipeline(tmp_path, fail=True))
    assert os.listdir(os.path.join(str(tmp_path), "Add", "statistics")) == []
