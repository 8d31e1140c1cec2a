"""LatestBlessedModelResolver through the LocalRunner and a real metadata store, with small
file-writing trainer/evaluator stand-ins and the real Pusher (no TF): what it resolves, what it
skips, and how the consumers' cache keys follow it."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from components.artifacts import Examples, InfraBlessing, Model, ModelBlessing
from components.base import Component, InputSpec
from components.pusher import Pusher
from components.resolver import LatestBlessedModelResolver, Resolver
from components.resolver.latest_blessed import LatestBlessedParameters
from pipeline import LocalRunner, MetadataStore, Pipeline, PipelineRunError
from tests.pipeline.toy_components import Source


@dataclasses.dataclass(frozen=True)
class FakeTrainerParams:
    note: str = ""


class FakeTrainer(Component):
    """Writes a 'SavedModel' directory; records the base model it was given."""

    INPUTS = {"examples": InputSpec(Examples), "base_model": InputSpec(Model, optional=True)}
    OUTPUTS = {"model": Model}
    PARAMETERS = FakeTrainerParams

    def __init__(self, examples, *, base_model=None, note: str = "", id=None):
        super().__init__(inputs={"examples": examples, "base_model": base_model},
                         parameters=FakeTrainerParams(note), id=id)

    def executor(self):
        def run(ctx):
            out = ctx.outputs["model"]
            os.makedirs(os.path.join(out.uri, "Format-Serving", "1"))
            with open(os.path.join(out.uri, "Format-Serving", "1", "saved_model.pb"), "w") as f:
                f.write(ctx.parameters.note)
            base = ctx.inputs.get("base_model") or []
            out.properties.update(serving_model="Format-Serving/1", base_model_id=base[0].id if base else None)
        return run


@dataclasses.dataclass(frozen=True)
class VerdictParams:
    blessed: bool = True


class FakeEvaluator(Component):
    INPUTS = {"model": InputSpec(Model), "baseline_model": InputSpec(Model, optional=True)}
    OUTPUTS = {"blessing": ModelBlessing}
    PARAMETERS = VerdictParams

    def __init__(self, model, *, baseline_model=None, blessed: bool = True, id=None):
        super().__init__(inputs={"model": model, "baseline_model": baseline_model},
                         parameters=VerdictParams(blessed), id=id)

    def executor(self):
        def run(ctx):
            baseline = ctx.inputs.get("baseline_model") or []
            ctx.outputs["blessing"].properties.update(
                blessed=ctx.parameters.blessed, reason="set by the test",
                baseline_model_id=baseline[0].id if baseline else None)
        return run


class FakeInfraValidator(Component):
    INPUTS = {"model": InputSpec(Model)}
    OUTPUTS = {"blessing": InfraBlessing}
    PARAMETERS = VerdictParams

    def __init__(self, model, *, blessed: bool = True, id=None):
        super().__init__(inputs={"model": model}, parameters=VerdictParams(blessed), id=id)

    def executor(self):
        def run(ctx):
            ctx.outputs["blessing"].properties.update(blessed=ctx.parameters.blessed, reason="set by the test")
        return run


def _pipeline(root, *, value=1, blessed=True, infra_blessed=True, pusher="Pusher", evaluator=True):
    source = Source(value)
    warm = LatestBlessedModelResolver(before=source.outputs["examples"], pusher=pusher, id="WarmStart")
    trainer = FakeTrainer(source.outputs["examples"], base_model=warm.outputs["model"], note=str(value))
    baseline = LatestBlessedModelResolver(before=trainer.outputs["model"], pusher=pusher, id="Baseline")
    nodes = [source, warm, trainer, baseline]
    blessings = {}
    if evaluator:
        judge = FakeEvaluator(trainer.outputs["model"], baseline_model=baseline.outputs["model"], blessed=blessed)
        nodes.append(judge)
        blessings["model_blessing"] = judge.outputs["blessing"]
    infra = FakeInfraValidator(trainer.outputs["model"], blessed=infra_blessed)
    push = Pusher(trainer.outputs["model"], infra_blessing=infra.outputs["blessing"],
                  push_destination=os.path.join(str(root), "serving"), model_name="m",
                  version_policy="increment", **blessings)
    return Pipeline("blessed", str(root), [*nodes, infra, push])


def _ids(result, node):
    return [a.id for a in result.resolved[node]["model"]]


def test_nothing_blessed_resolves_nothing_then_new_data_warm_starts_from_the_pushed_model(tmp_path):
    first = LocalRunner().run(_pipeline(tmp_path))
    assert _ids(first, "WarmStart") == [] and _ids(first, "Baseline") == []
    assert first.outputs["WarmStart"] == {}  # nothing chosen: no output artifact
    assert first.outputs["FakeTrainer"]["model"].properties["base_model_id"] is None
    v1 = first.outputs["FakeTrainer"]["model"]
    assert first.outputs["Pusher"]["pushed_model"].properties["version"] == 1

    # Unchanged inputs: the resolvers answer as before (v1 was pushed after these inputs), so
    # every component comes from the cache and nothing is pushed twice.
    again = LocalRunner().run(_pipeline(tmp_path))
    assert again.cached == ["Source", "FakeTrainer", "FakeEvaluator", "FakeInfraValidator", "Pusher"]
    assert again.states["WarmStart"] == again.states["Baseline"] == "COMPLETE"
    assert _ids(again, "WarmStart") == [] and _ids(again, "Baseline") == []

    # New data: both resolvers choose v1; the new cache keys rerun the trainer and the rest.
    second = LocalRunner().run(_pipeline(tmp_path, value=2))
    assert _ids(second, "WarmStart") == [v1.id] and _ids(second, "Baseline") == [v1.id]
    assert second.outputs["WarmStart"]["model"].uri == v1.uri  # the artifact itself, not a copy
    assert second.outputs["FakeTrainer"]["model"].properties["base_model_id"] == v1.id
    assert second.outputs["FakeEvaluator"]["blessing"].properties["baseline_model_id"] == v1.id
    assert second.outputs["Pusher"]["pushed_model"].properties["version"] == 2
    v2 = second.outputs["FakeTrainer"]["model"]

    # The choice is recorded as lineage: the resolver's execution read the Source output and
    # output v1; v1's producer is still the trainer of the first run.
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    executions = store.executions_of_run(second.run_id)
    warm = [e for e in executions if e["component"] == "WarmStart"][0]
    assert store.outputs_of(warm["id"]) == {"model": store.artifact(v1.id)}
    assert store.lineage(v1.id)["execution"]["component"] == "FakeTrainer"

    # A third data version warm-starts from v2, the newest blessed model.
    third = LocalRunner().run(_pipeline(tmp_path, value=3))
    assert _ids(third, "WarmStart") == [v2.id] and _ids(third, "Baseline") == [v2.id]


def test_unblessed_unpushed_and_deleted_models_are_skipped(tmp_path):
    v1 = LocalRunner().run(_pipeline(tmp_path)).outputs["FakeTrainer"]["model"]
    rejected = LocalRunner().run(_pipeline(tmp_path, value=2, blessed=False))
    assert rejected.outputs["Pusher"]["pushed_model"].properties["pushed"] is False
    infra_failed = LocalRunner().run(_pipeline(tmp_path, value=3, infra_blessed=False))
    assert infra_failed.outputs["Pusher"]["pushed_model"].properties["pushed"] is False
    later = LocalRunner().run(_pipeline(tmp_path, value=4))
    assert _ids(later, "WarmStart") == [v1.id]

    # A push without an Evaluator's blessing does not make a model "blessed".
    unchecked = LocalRunner().run(_pipeline(tmp_path, value=5, evaluator=False))
    assert unchecked.outputs["Pusher"]["pushed_model"].properties["pushed"] is True
    v4 = later.outputs["FakeTrainer"]["model"]
    sixth = LocalRunner().run(_pipeline(tmp_path, value=6))
    assert _ids(sixth, "WarmStart") == [v4.id]

    # A blessed model whose directory is gone is skipped for the next older one.
    shutil.rmtree(sixth.outputs["FakeTrainer"]["model"].uri)
    assert _ids(LocalRunner().run(_pipeline(tmp_path, value=7)), "WarmStart") == [v4.id]


def test_partial_run_still_resolves_the_baseline(tmp_path):
    LocalRunner().run(_pipeline(tmp_path))
    second = LocalRunner().run(_pipeline(tmp_path, value=2))
    v1 = second.resolved["Baseline"]["model"][0]
    again = LocalRunner().run(_pipeline(tmp_path, value=2), from_nodes=["FakeEvaluator"])
    assert list(again.states) == ["Baseline", "FakeEvaluator", "Pusher"]
    assert _ids(again, "Baseline") == [v1.id]
    assert again.cached == ["FakeEvaluator", "Pusher"]


def test_unknown_pusher_id_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="WarmStart reads the history of node 'Pushr', which is not in "
                                         "pipeline 'blessed'"):
        LocalRunner().run(_pipeline(tmp_path, pusher="Pushr"))


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="LatestBlessedModelResolver got pusher=''"):
        LatestBlessedParameters(pusher="")


def test_a_resolver_output_takes_no_span_policy(tmp_path):
    source = Source(1)
    warm = LatestBlessedModelResolver(before=source.outputs["examples"], pusher="Source", id="WarmStart")
    trainer = FakeTrainer(source.outputs["examples"], base_model=warm.outputs["model"].previous_span())
    with pytest.raises(ValueError, match="a resolver's output takes no span policy"):
        LocalRunner().run(Pipeline("p", str(tmp_path), [source, warm, trainer]))


@dataclasses.dataclass(frozen=True)
class BadParams:
    answer: str = "keys"


class BadResolver(Resolver):
    OUTPUTS = {"model": Model}
    PARAMETERS = BadParams

    def __init__(self, answer):
        super().__init__(inputs={}, parameters=BadParams(answer))

    def resolve(self, inputs, history):
        if self.parameters.answer == "keys":
            return {"models": []}
        return {"model": [ModelBlessing(uri="/x", id=1)]}


@pytest.mark.parametrize("answer, message", [
    ("keys", "BadResolver.resolve returned {'models': \\[\\]}; expected a dict with the keys \\['model'\\]"),
    ("types", "BadResolver.resolve returned model=.*; expected a list of published Model artifacts"),
])
def test_a_resolver_must_answer_every_output_with_published_artifacts(tmp_path, answer, message):
    with pytest.raises(PipelineRunError, match=message):
        LocalRunner().run(Pipeline("p", str(tmp_path), [BadResolver(answer)]))
    store = MetadataStore(f"sqlite:///{tmp_path}/metadata.sqlite")
    assert store.list_runs()[0]["executions"] == {"FAILED": 1}
