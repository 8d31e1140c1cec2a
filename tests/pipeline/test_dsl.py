import pytest

from pipeline import Pipeline
from tests.pipeline.toy_components import Add, SchemaOf, Source


def test_type_mismatch_is_a_build_time_error():
    source = Source()
    add = Add(source.outputs["examples"])
    with pytest.raises(TypeError, match="expected a Channel of ExampleStatistics, not Examples"):
        SchemaOf(source.outputs["examples"])
    with pytest.raises(TypeError, match="SchemaOf got statistics=3; expected a Channel"):
        SchemaOf(3)
    assert add.upstream == [source]


def test_missing_required_input_and_unknown_input():
    with pytest.raises(ValueError, match="Add got examples=None; expected a Channel of Examples"):
        Add(None)
    with pytest.raises(ValueError, match="got input nope=...; expected one of"):
        Source().__class__.__init__.__globals__["Component"].__init__(
            Source(), inputs={"nope": None}, parameters=Source().parameters)


def test_wrong_parameter_type():
    from tests.pipeline.toy_components import AddParams
    with pytest.raises(TypeError, match="Source got parameters=AddParams.*expected a SourceParams"):
        Source().__class__.__bases__[0].__init__(Source(), inputs={}, parameters=AddParams())


def test_cycle_is_detected_when_the_pipeline_is_built(tmp_path):
    from tests.pipeline.toy_components import Relay
    a = Relay(id="A")
    b = Relay(a.outputs["examples"], id="B")
    a.inputs["examples"] = b.outputs["examples"]  # constructors cannot make a cycle; mutation can
    with pytest.raises(ValueError, match="Pipeline got a cycle: A -> B -> A"):
        Pipeline("p", str(tmp_path), [a, b])


def test_hand_built_channel_of_the_wrong_type(tmp_path):
    from components.artifacts import Examples
    from components.base import Channel
    source = Source()
    add = Add(source.outputs["examples"])
    bad = Add(Channel(Examples, add, "statistics"), id="Bad")
    with pytest.raises(TypeError, match="but Add produces statistics=ExampleStatistics"):
        Pipeline("p", str(tmp_path), [source, add, bad])


def test_duplicate_ids_missing_producer_and_bad_name(tmp_path):
    with pytest.raises(ValueError, match="two components with id='Source'"):
        Pipeline("p", str(tmp_path), [Source(), Source()])
    source = Source()
    with pytest.raises(ValueError, match="wired to 'Source', which is not in the pipeline"):
        Pipeline("p", str(tmp_path), [Add(source.outputs["examples"])])
    with pytest.raises(ValueError, match="Pipeline got name=''"):
        Pipeline("", str(tmp_path), [])
    with pytest.raises(TypeError, match="expected a Component"):
        Pipeline("p", str(tmp_path), ["x"])
    with pytest.raises(ValueError, match="expected an int >= 1"):
        source.outputs["examples"].span_window(0)


def test_default_metadata_is_sqlite_under_root(tmp_path):
    p = Pipeline("p", str(tmp_path), [Source()])
    assert p.metadata == f"sqlite:///{tmp_path}/metadata.sqlite"
    assert p.components[0].id == "Source"


def test_task_dependencies_make_a_gate_pass_before_the_nodes_that_use_the_same_data():
    from pipeline.dsl import task_dependencies
    from pipeline.examples.taxi_full_pipeline import create_pipeline

    deps = task_dependencies(create_pipeline(root="/tmp/unused", bulk_inference=True).components)
    # ExampleValidator's output is consumed by nobody: on an orchestrator it must still stop the
    # run, as the local runner stops at it, so Transform (same data) waits for it, once.
    assert deps["Transform"] == ("ExampleGen", "SchemaGen", "ExampleValidator")
    assert "ExampleValidator" not in deps["Trainer"]  # already upstream through Transform
    assert deps["ExampleValidator"] == ("StatisticsGen", "SchemaGen")
    assert deps["BulkInferrer"][-1] == "Pusher"  # a sink gates what runs after it
    assert deps["ExampleGen"] == ()


def test_a_file_url_root_is_a_local_path_and_an_object_store_root_stays_a_url(tmp_path):
    assert Pipeline("p", root=f"file://{tmp_path}", components=[]).root == str(tmp_path)
    url = Pipeline("p", root="gs://b/p", components=[], metadata="sqlite:////tmp/m.sqlite")
    assert (url.root, url.metadata) == ("gs://b/p", "sqlite:////tmp/m.sqlite")
