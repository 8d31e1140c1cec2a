"""Scheduled retraining of the full taxi pipeline (pipeline/examples/taxi_full_pipeline.py) on
data/taxi_spans, in one pipeline root:

1. span-1, through the CLI, killed with SIGKILL while the Trainer trains, then rerun: the upstream
   components come from the cache and the Trainer resumes from its last checkpoint; v1 is pushed.
2. span-2 appears: the Trainer warm-starts from v1 (vocabulary rows moved to the new ids), the
   Evaluator compares with v1, and v2 is pushed because the change threshold passes.
3. a forced worse model (one step, cold start) is NOT_BLESSED against the served model, with the
   reason, and the served versions stay as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from components.evaluator import MetricThreshold
from components.trainer.model_paths import checkpoint_path
from pipeline import LocalRunner, MetadataStore
from tests.pipeline.e2e_helpers import REPO, cli, states

KILL_RUN_STEPS = 800
CHECKPOINT_EVERY = 50
UPSTREAM = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform"]
# Bounds a model trained for a few hundred steps clears by far (so the verdicts below do not hang
# on the optimizer's defaults); the change threshold leaves a margin the warm-started model clears,
# and the forced worse model below is judged with the pipeline's own, stricter thresholds.
THRESHOLDS = (MetricThreshold("AUC", lower_bound=0.8, min_change=-0.05),
              MetricThreshold("Calibration", lower_bound=0.5, upper_bound=2.0))
PIPELINE_FILE = '''
from components.evaluator import MetricThreshold
from pipeline.examples.taxi_full_pipeline import create_pipeline as full_pipeline


def create_pipeline(*, root, beam_pipeline_args=(), metadata=None):
    return full_pipeline(root=root, data_root={data!r}, file_pattern="span-{{SPAN}}.csv", on_anomaly="warn",
                         train_steps={steps}, save_checkpoints_steps={every}, random_seed=7,
                         thresholds={thresholds!r}, beam_pipeline_args=beam_pipeline_args, metadata=metadata)
'''


def _trainer_checkpoint_step(root: str) -> int | None:
    """The newest checkpoint step in the Trainer's work dir, from the checkpoint state file."""
    base = os.path.join(root, ".work", "Trainer")
    for name in os.listdir(base) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, name, "model_dir", "checkpoint")) as f:
                match = re.search(r'model_checkpoint_path: ".*-(\d+)"', f.read())
        except OSError:
            continue
        if match:
            return int(match.group(1))
    return None


def _served(root: str) -> list[str]:
    path = os.path.join(root, "serving", "taxi")
    return sorted(n for n in os.listdir(path) if n.isdigit()) if os.path.isdir(path) else []


def _newest_pushed_model_id(store: MetadataStore) -> int:
    pushes = [a for a in store.published("taxi", "Pusher", "pushed_model") if a.properties.get("pushed")]
    return pushes[0].properties["model_id"]


@pytest.fixture(scope="module")
def retraining(tmp_path_factory):
    """Span 1 through the CLI, killed during the Trainer once a checkpoint past step 0 exists, rerun."""
    work = tmp_path_factory.mktemp("retraining")
    data, root = work / "data", str(work / "root")
    data.mkdir()
    shutil.copy(os.path.join(REPO, "data", "taxi_spans", "span-1.csv"), data)
    pipeline_file = work / "taxi_spans.py"
    pipeline_file.write_text(PIPELINE_FILE.format(data=str(data), steps=KILL_RUN_STEPS, every=CHECKPOINT_EVERY,
                                                 thresholds=THRESHOLDS))

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(pipeline_file), "--root", root],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while (_trainer_checkpoint_step(root) or 0) < CHECKPOINT_EVERY:
            assert child.poll() is None, "the run ended before the Trainer wrote a checkpoint past step 0"
            assert time.monotonic() < deadline, "the Trainer never wrote a checkpoint past step 0"
            time.sleep(0.1)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the process group this fixture started
        child.wait()
    killed_at = _trainer_checkpoint_step(root)  # the work dir survives the kill
    rerun = cli("run", str(pipeline_file), "--root", root)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    return SimpleNamespace(root=root, data=data, killed_at=killed_at,
                           store=MetadataStore(f"sqlite:///{root}/metadata.sqlite"))


def _run(retraining, **kwargs):
    from pipeline.examples.taxi_full_pipeline import create_pipeline

    return LocalRunner().run(create_pipeline(root=retraining.root, data_root=str(retraining.data),
                                             file_pattern="span-{SPAN}.csv", on_anomaly="warn",
                                             random_seed=7, **kwargs))


@pytest.mark.slow
def test_kill_9_during_the_trainer_then_rerun_resumes_from_its_checkpoint(retraining):
    root, store = retraining.root, retraining.store
    assert CHECKPOINT_EVERY <= retraining.killed_at < KILL_RUN_STEPS
    rerun_states = states(root)
    assert [rerun_states[c] for c in UPSTREAM] == ["CACHED"] * len(UPSTREAM)
    assert {rerun_states[c] for c in ("Trainer", "Evaluator", "InfraValidator", "Pusher")} == {"COMPLETE"}
    killed = store.list_runs()[1]
    assert killed["state"] == "ABANDONED"
    assert killed["executions"] == {"COMPLETE": len(UPSTREAM) + 1, "ABANDONED": 1}  # + WarmStartResolver

    [model] = store.published("taxi", "Trainer", "model")
    assert model.properties["resumed_from_step"] == retraining.killed_at  # not from step 0
    assert model.properties["metrics"]["global_step"] == KILL_RUN_STEPS
    assert model.properties["base_model_id"] is None  # nothing was blessed: a cold start
    [model_run] = store.published("taxi", "Trainer", "model_run")
    assert f"model.ckpt-{KILL_RUN_STEPS}.index" in os.listdir(model_run.uri)
    assert not os.listdir(os.path.join(root, ".work", "Trainer"))  # scratch removed once published
    assert [n for n in os.listdir(os.path.dirname(model_run.uri)) if n.startswith(".tmp-")] == []

    blessing = store.published("taxi", "Evaluator", "blessing")[0].properties
    assert blessing["verdict"] == "BLESSED", blessing
    assert blessing["baseline_model_id"] is None
    assert "no baseline: value thresholds only" in blessing["reason"]
    assert _newest_pushed_model_id(store) == model.id and len(_served(root)) == 1


@pytest.mark.slow
def test_new_span_warm_starts_from_the_blessed_model_and_is_judged_against_it(retraining):
    import numpy as np
    import tensorflow as tf

    store = retraining.store
    v1 = store.artifact(_newest_pushed_model_id(store))
    served_before = _served(retraining.root)
    shutil.copy(os.path.join(REPO, "data", "taxi_spans", "span-2.csv"), retraining.data)
    result = _run(retraining, train_steps=200, thresholds=THRESHOLDS)
    assert result.outputs["ExampleGen"]["examples"].properties["span"] == 2
    assert [a.id for a in result.resolved["WarmStartResolver"]["model"]] == [v1.id]
    assert [a.id for a in result.resolved["BaselineResolver"]["model"]] == [v1.id]

    # Warm start: the first checkpoint (step 0) holds v1's weights, with each vocabulary row
    # moved to its token's new id and the rows of new tokens zero.
    v2 = result.outputs["Trainer"]["model"]
    assert v2.properties["base_model_id"] == v1.id
    assert v2.properties["warm_started_from"] == checkpoint_path(v1)
    assert v2.properties["warm_start_vocabularies"]["company"]["new"] > 0
    start = os.path.join(result.outputs["Trainer"]["model_run"].uri, "model.ckpt-0")
    old, new = checkpoint_path(v1), start
    np.testing.assert_array_equal(tf.train.load_variable(new, "dnn/hiddenlayer_1/kernel"),
                                  tf.train.load_variable(old, "dnn/hiddenlayer_1/kernel"))
    vocab = {m.id: _vocabulary(m, "company") for m in (v1, v2)}
    [table] = [n for n, _ in tf.train.list_variables(old) if n.endswith("/company_embedding/embedding_weights")]
    old_rows, new_rows = tf.train.load_variable(old, table), tf.train.load_variable(new, table)
    kept = [t for t in vocab[v2.id] if t in vocab[v1.id]]
    added = [t for t in vocab[v2.id] if t not in vocab[v1.id]]
    assert kept and added
    for token in kept:
        np.testing.assert_array_equal(new_rows[vocab[v2.id].index(token)], old_rows[vocab[v1.id].index(token)])
    for token in added:
        assert not new_rows[vocab[v2.id].index(token)].any()
    assert vocab[v1.id] != vocab[v2.id]  # the ids did move

    # Evaluated against v1: diff metrics; pushed because the change threshold passed.
    evaluation = result.outputs["Evaluator"]["evaluation"].properties
    assert evaluation["baseline_model_id"] == v1.id
    assert evaluation["metrics"]["auc_diff"] >= -0.05
    blessing = result.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "BLESSED" and blessing["reason"] == "every threshold passed", blessing
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is True and pushed["model_id"] == v2.id
    assert _served(retraining.root) == sorted(served_before + [str(pushed["version"])])

    # Unchanged inputs: the resolvers answer as before, so nothing reruns and nothing is pushed.
    again = _run(retraining, train_steps=200, thresholds=THRESHOLDS)
    assert set(again.cached) == set(UPSTREAM + ["Trainer", "Evaluator", "InfraValidator", "Pusher"])
    assert _served(retraining.root) == sorted(served_before + [str(pushed["version"])])


def _vocabulary(model, name):
    with open(os.path.join(model.uri, model.properties["vocabularies"][name]), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


@pytest.mark.slow
def test_a_forced_worse_model_is_not_blessed_and_the_served_versions_stay(retraining):
    store = retraining.store
    served_before = _served(retraining.root)
    newest = _newest_pushed_model_id(store)
    result = _run(retraining, train_steps=1, warm_start=False)
    assert result.outputs["Trainer"]["model"].properties["base_model_id"] is None  # a cold start
    assert [a.id for a in result.resolved["BaselineResolver"]["model"]] == [newest]
    blessing = result.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "NOT_BLESSED", blessing
    assert blessing["baseline_model_id"] == newest
    assert "auc change vs baseline on overall" in blessing["reason"], blessing["reason"]
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is False and pushed["reason"].startswith("model_blessing")
    assert _served(retraining.root) == served_before
    assert _newest_pushed_model_id(store) == newest


def _spec_with(features):
    from components.feature_spec import FeatureSpec
    from pipeline.examples.taxi_pipeline import LABEL

    return FeatureSpec(features=tuple(features), label=LABEL)


@pytest.mark.slow
def test_warm_start_from_a_model_that_does_not_fit_is_a_clear_error(retraining, tmp_path):
    import dataclasses

    from components.artifacts import Model
    from components.base import ComponentError
    from components.feature_spec import Numeric, Vocabulary
    from components.trainer import CannedEstimatorConfig
    from components.trainer.warm_start import remap_base_checkpoint
    from pipeline.examples.taxi_pipeline import TAXI_FEATURES

    store = retraining.store
    base = store.artifact(_newest_pushed_model_id(store))
    graph = store.published("taxi", "Transform", "transform_graph")[0].uri
    config = CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=TAXI_FEATURES)
    out = str(tmp_path / "remapped")

    prefix, summary = remap_base_checkpoint(base, config, graph, out)  # the real one fits
    assert os.path.exists(prefix + ".index") and set(summary) >= {"company", "payment_type"}

    with pytest.raises(ComponentError, match="Trainer got base_model 7 .* without a checkpoint"):
        remap_base_checkpoint(Model(uri=base.uri, id=7), config, graph, out)
    no_vocabularies = Model(uri=base.uri, id=base.id, properties={
        k: v for k, v in base.properties.items() if k != "vocabularies"})
    with pytest.raises(ComponentError, match="with no vocabulary for feature 'payment_type'"):
        remap_base_checkpoint(no_vocabularies, config, graph, out)
    more_oov = [dataclasses.replace(f, num_oov_buckets=3) if f.name == "payment_type" else f
                for f in TAXI_FEATURES.features]
    with pytest.raises(ComponentError, match="whose linear/linear_model/payment_type/weights has [0-9]+ rows; "
                                             "its vocabulary of 'payment_type' gives [0-9]+ \\+ 3 OOV"):
        remap_base_checkpoint(base, dataclasses.replace(config, feature_spec=_spec_with(more_oov)), graph, out)
    no_fare = [f for f in TAXI_FEATURES.features if f.name != "fare"]
    assert any(isinstance(f, Numeric) for f in no_fare) and any(isinstance(f, Vocabulary) for f in no_fare)
    with pytest.raises(ComponentError, match="whose dnn/hiddenlayer_0/kernel has [0-9]+ input rows; this "
                                             "FeatureSpec gives [0-9]+ with the base's vocabularies"):
        remap_base_checkpoint(base, dataclasses.replace(config, feature_spec=_spec_with(no_fare)), graph, out)
