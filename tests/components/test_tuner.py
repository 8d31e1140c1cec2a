"""Tuner: an Optuna study over the model's hyperparameters, trained through the Trainer's code.

The end-to-end fixture runs a YAML pipeline with a ``tuning:`` section on a slice of the taxi
data (ExampleGen -> ... -> Transform -> Tuner -> Trainer, LocalRunner; the study in
``<root>/Tuner/studies.sqlite``); the other tests read its outputs or call the executor on its
Transform outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import pytest

from components.artifacts import HyperParameters
from components.base import ExecutionContext
from components.feature_spec import Embedding, FeatureSpec, Label, Numeric, Vocabulary
from components.trainer import CannedEstimatorConfig
from components.trainer.hyperparameters import apply_hyperparameters, read_best_hyperparameters
from components.tuner import Choice, Pruner, Range, Tuner, TunerParameters
from tests.components.test_trainer import taxi_slice

ROWS = 1500
DEFAULT_ARGS = {"hidden_units": [32, 16], "optimizer": {"name": "Adagrad", "learning_rate": 0.05}}
# The space leaves out the default hidden units, so the trained model's shapes show whether the
# Trainer applied the Tuner's values.
SPEC = textwrap.dedent("""\
    name: tuning-test
    data: {path: data/data.csv, bad_rows: quarantine}
    label: {name: big_tipper, expression: "tips > 0.2 * fare"}
    features:
      - {name: trip_miles, type: numeric}
      - {name: fare, type: numeric}
      - {name: trip_seconds, type: numeric}
      - {name: payment_type, type: vocabulary, top_k: 10}
      - {name: company, type: vocabulary, top_k: 50}
      - {name: trip_start_hour, type: vocabulary}
      - {name: company_embedding, type: embedding, source: company, dimension: 4}
    validation: {on_anomaly: warn}
    model:
      estimator: DNNClassifier
      args: {hidden_units: [32, 16], optimizer: {name: Adagrad, learning_rate: 0.05}}
    training: {steps: 150, batch_size: 32, random_seed: 1}
    tuning:
      trials: 4
      eval_every: 50
      seed: 1
      space:
        hidden_units: [[64, 32], [16]]
        learning_rate: {low: 0.02, high: 0.3, log: true}
        embedding_dimension: [2, 8]
    """)
# Seed-to-seed spread of the default config's AUC here (150 steps, 5 model seeds, measured by the
# Tuner's objective): 0.9376..0.9441, std 0.0025. "No worse than the default" means no worse than
# that noise: 0.01 is 4 standard deviations and 1.5 times the observed range.
AUC_TOLERANCE = 0.01


def _load(root, *overrides):
    from pipeline.yaml_spec import load_spec

    path = os.path.join(str(root), "spec.yaml")
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write(SPEC)
    return load_spec(path, overrides=list(overrides))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    from pipeline import LocalRunner
    from pipeline.yaml_spec import build_pipeline

    root = tmp_path_factory.mktemp("tuner")
    taxi_slice(root / "data", rows=ROWS)
    spec = _load(root)
    pipeline = build_pipeline(spec, root=str(root / "pipeline"))
    result = LocalRunner().run(pipeline, to_nodes=["Trainer"])
    return result, pipeline, spec, root


def _context(params, result, root, *, work_dir=None, execution_id=1, component_id="Tuner"):
    """An ExecutionContext for the Tuner's executor on the fixture's Transform outputs, laid out as
    the runner does (``<root>/<id>/<output>/<execution id>``)."""
    out_dir = os.path.join(str(root), component_id, "best_hyperparameters", str(execution_id))
    os.makedirs(out_dir, exist_ok=True)
    temp = os.path.join(str(root), ".temp", str(execution_id))
    os.makedirs(temp, exist_ok=True)
    transform = result.outputs["Transform"]
    return ExecutionContext(
        component_id=component_id, execution_id=execution_id,
        inputs={"examples": [transform["transformed_examples"]], "transform_graph": [transform["transform_graph"]]},
        outputs={"best_hyperparameters": HyperParameters(uri=out_dir)}, parameters=params,
        beam_pipeline_args=(), temp_dir=temp, work_dir=work_dir)


def _rows(artifact):
    import csv

    with open(artifact.trials_path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_pipeline_tunes_then_trains(tuned):
    result, pipeline, _, _ = tuned
    assert [c.id for c in pipeline.components][4:7] == ["Transform", "Tuner", "WarmStartResolver"]
    assert result.states["Tuner"] == result.states["Trainer"] == "COMPLETE"
    best = result.outputs["Tuner"]["best_hyperparameters"]
    props = best.properties
    assert set(props["values"]) == {"hidden_units", "learning_rate", "embedding_dimension"}
    assert props["metric"] == "auc" and props["direction"] == "maximize"
    assert sum(props["trials"].values()) == 4 and props["trials"].get("COMPLETE", 0) >= 1
    assert props["storage"] == f"sqlite:///{os.path.join(pipeline.root, 'Tuner', 'studies.sqlite')}"  # default
    assert read_best_hyperparameters(best) == props["values"]
    with open(best.best_hyperparameters_path, encoding="utf-8") as f:
        saved = json.load(f)
    assert saved["value"] == props["best_value"] and saved["trial"] == props["best_trial"]
    rows = _rows(best)
    assert [int(r["number"]) for r in rows] == [0, 1, 2, 3]
    assert {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    best_row = rows[props["best_trial"]]
    assert float(best_row["value"]) == props["best_value"]
    assert json.loads(best_row["params"]) == props["values"] and float(best_row["duration_s"]) > 0
    for row in rows:
        assert int(row["last_step"]) in (50, 100, 150)
        assert (row["state"] == "PRUNED") == row["note"].startswith("pruned at step")


def test_best_trial_is_no_worse_than_the_default_config(tuned, tmp_path):
    result, pipeline, spec, _ = tuned
    tuner = pipeline.component("Tuner").parameters
    best = result.outputs["Tuner"]["best_hyperparameters"].properties
    # The default, measured the same way: a one-trial study whose space holds only the defaults.
    defaults = {"hidden_units": Choice([32, 16]), "learning_rate": Choice(0.05), "embedding_dimension": Choice(4)}
    assert apply_hyperparameters(tuner.canned, {k: v.values[0] for k, v in defaults.items()}) == tuner.canned
    import dataclasses

    params = dataclasses.replace(tuner, space=defaults, trials=1)
    ctx = _context(params, result, tmp_path)
    from components.tuner.executor import run

    run(ctx)
    default = ctx.outputs["best_hyperparameters"].properties["best_value"]
    assert best["best_value"] >= default - AUC_TOLERANCE, (best, default)
    assert os.path.isfile(tmp_path / "Tuner" / "studies.sqlite")
    # The next execution of the node finds the study there: nothing to train.
    again = _context(params, result, tmp_path, execution_id=2)
    run(again)
    assert again.outputs["best_hyperparameters"].properties["best_value"] == default
    assert len(_rows(again.outputs["best_hyperparameters"])) == 1


def test_trainer_trains_with_the_best_values(tuned):
    import tensorflow as tf

    from components.trainer import checkpoint_path

    result, _, _, _ = tuned
    best = result.outputs["Tuner"]["best_hyperparameters"]
    values = best.properties["values"]
    model = result.outputs["Trainer"]["model"]
    assert model.properties["hyperparameters"] == values
    assert model.properties["hyperparameters_id"] == best.id
    assert model.properties["architecture"]["kwargs"]["hidden_units"] == values["hidden_units"]
    shapes = dict(tf.train.list_variables(checkpoint_path(model)))
    kernels = sorted(k for k in shapes if k.startswith("dnn/hiddenlayer_") and k.endswith("/kernel"))
    assert [shapes[k][1] for k in kernels] == values["hidden_units"] != DEFAULT_ARGS["hidden_units"]
    embedding = [k for k in shapes if "company_embedding" in k and k.endswith("embedding_weights")]
    assert len(embedding) == 1 and shapes[embedding[0]][1] == values["embedding_dimension"]


def test_unchanged_rerun_is_cached(tuned):
    from pipeline import LocalRunner

    result, pipeline, _, _ = tuned
    again = LocalRunner().run(pipeline, to_nodes=["Trainer"])
    assert again.states["Tuner"] == again.states["Trainer"] == "CACHED"
    assert again.outputs["Tuner"]["best_hyperparameters"].id == result.outputs["Tuner"]["best_hyperparameters"].id


def test_a_killed_tuner_resumes_its_study(tuned, tmp_path):
    """The fixture's study (4 trials finished) gets a RUNNING trial of a dead process, as a Tuner
    killed inside trial 4 leaves it; a rerun with trials=5 keeps trials 0-3, marks trial 4 FAIL
    and retries its values as the fifth finished trial."""
    import dataclasses
    import socket

    import optuna

    from components.tuner.executor import run
    from components.tuner.study import WORKER

    result, pipeline, _, _ = tuned
    params = pipeline.component("Tuner").parameters
    name = result.outputs["Tuner"]["best_hyperparameters"].properties["study_name"]
    storage = result.outputs["Tuner"]["best_hyperparameters"].properties["storage"]
    study = optuna.load_study(study_name=name, storage=storage)
    before = {t.number: (t.state, t.params, t.datetime_complete) for t in study.trials}
    assert sorted(before) == [0, 1, 2, 3]

    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = study.ask()
    orphan.set_user_attr(WORKER, {"host": socket.gethostname(), "pid": dead.pid})
    orphan.suggest_categorical("hidden_units", ["[64, 32]", "[16]"])
    orphan.report(0.5, 50)

    # As another process joins the study by its URL (the study name leaves storage out).
    rerun = _context(dataclasses.replace(params, trials=5, storage=storage), result, tmp_path)
    run(rerun)
    artifact = rerun.outputs["best_hyperparameters"]
    assert artifact.properties["study_name"] == name  # the trial count is not part of the study's identity
    trials = {t.number: t for t in optuna.load_study(study_name=name, storage=storage).trials}
    assert {n: (trials[n].state, trials[n].params, trials[n].datetime_complete) for n in before} == before
    assert trials[4].state == optuna.trial.TrialState.FAIL
    assert trials[5].user_attrs["retry_of"] == 4 and trials[5].state != optuna.trial.TrialState.FAIL
    assert trials[5].params["hidden_units"] == orphan.params["hidden_units"]
    assert sorted(trials) == [0, 1, 2, 3, 4, 5]
    rows = {int(r["number"]): r for r in _rows(artifact)}
    assert rows[4]["state"] == "FAIL" and "interrupted" in rows[4]["note"]
    assert rows[5]["note"].startswith("retry of trial 4")
    assert artifact.properties["trials"]["FAIL"] == 1 and sum(artifact.properties["trials"].values()) == 6


def test_a_nan_loss_fails_the_trial_and_a_study_without_a_complete_trial_fails(tuned, tmp_path):
    import dataclasses

    from components.base import ComponentError
    from components.tuner.executor import run

    result, pipeline, _, _ = tuned
    params = dataclasses.replace(  # a storage URL: Optuna's heartbeat runs too
        pipeline.component("Tuner").parameters, trials=1, steps=20, eval_every=10, eval_steps=2,
        space={"optimizer": Choice("SGD"), "learning_rate": Choice(1e30)},
        storage=f"sqlite:///{tmp_path / 'shared' / 'studies.sqlite'}")
    ctx = _context(params, result, tmp_path, work_dir=str(tmp_path / "work"))
    with pytest.raises(ComponentError, match=r"no complete trial .*'FAIL': 1.*first error: NaN loss.*How to fix"):
        run(ctx)


def test_a_database_with_another_alembic_schema_is_refused(tuned, tmp_path):
    """The metadata store versions its schema with Alembic's ``alembic_version`` table, as Optuna does."""
    import dataclasses
    import sqlite3

    from components.base import ComponentError
    from components.tuner.executor import run

    path = tmp_path / "metadata.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('0002')")
    result, pipeline, _, _ = tuned
    params = dataclasses.replace(pipeline.component("Tuner").parameters, storage=f"sqlite:///{path}")
    with pytest.raises(ComponentError, match=r"Tuner got storage='sqlite:///.*metadata.sqlite'; Optuna cannot use "
                                             r"it: .*another Alembic-versioned schema.*How to fix"):
        run(_context(params, result, tmp_path))


def test_a_named_study_of_the_other_direction_is_refused(tuned, tmp_path):
    import dataclasses

    from components.base import ComponentError
    from components.tuner.executor import run

    result, pipeline, _, _ = tuned
    best = result.outputs["Tuner"]["best_hyperparameters"].properties
    params = dataclasses.replace(pipeline.component("Tuner").parameters, metric="average_loss",
                                 direction="minimize", storage=best["storage"], study_name=best["study_name"])
    with pytest.raises(ComponentError, match=r"study_name='Tuner-.*', a study in sqlite:///.* that maximizes; "
                                             r"expected one that minimizes average_loss. How to fix"):
        run(_context(params, result, tmp_path))


# ------------------------------------------------------------------ the search space and parameters

SMALL = FeatureSpec(features=(Numeric("fare"), Vocabulary("company"), Embedding("company_embedding", source="company")),
                    label=Label("big_tipper"))


def _canned(estimator="DNNLinearCombinedClassifier", **kwargs):
    return CannedEstimatorConfig(estimator, feature_spec=SMALL, kwargs=kwargs)


def test_hyperparameters_map_to_each_estimator_family():
    wide_deep = apply_hyperparameters(
        _canned(dnn_hidden_units=[8], linear_optimizer={"name": "Ftrl", "l1_regularization_strength": 0.1}),
        {"hidden_units": [16, 8], "learning_rate": 0.1, "linear_learning_rate": 0.3, "dropout": 0.2,
         "embedding_dimension": 3, "batch_size": 16})
    assert wide_deep.kwargs == {"dnn_hidden_units": [16, 8], "dnn_dropout": 0.2,
                                "dnn_optimizer": {"name": "Adagrad", "learning_rate": 0.1},
                                "linear_optimizer": {"name": "Ftrl", "l1_regularization_strength": 0.1,
                                                     "learning_rate": 0.3}}
    assert wide_deep.batch_size == 16 and wide_deep.feature_spec.features[2].dimension == 3
    dnn = apply_hyperparameters(_canned("DNNRegressor", hidden_units=[4], optimizer="Adam"),
                                {"hidden_units": [2], "optimizer": "SGD", "batch_norm": True})
    assert dnn.kwargs == {"hidden_units": [2], "optimizer": {"name": "SGD"}, "batch_norm": True}
    linear = apply_hyperparameters(_canned("LinearClassifier"), {"learning_rate": 0.5})
    assert linear.kwargs == {"optimizer": {"name": "Ftrl", "learning_rate": 0.5}}
    with pytest.raises(ValueError, match=r"apply_hyperparameters got hidden_units=\[2\]: 'hidden_units' does not "
                                         r"apply to LinearClassifier.*How to fix"):
        apply_hyperparameters(_canned("LinearClassifier"), {"hidden_units": [2]})


def test_optimizer_names_are_the_trainers():
    from components.trainer.hyperparameters import OPTIMIZER_NAMES
    from trainer.optimizers import DEFAULT_LEARNING_RATES

    assert set(OPTIMIZER_NAMES) == set(DEFAULT_LEARNING_RATES)


def test_choices_that_are_lists_round_trip_through_optuna():
    import optuna

    from components.tuner.space import suggest

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    dimension = Choice([64, 32], [16])
    seen = {tuple(suggest(study.ask(), "hidden_units", dimension)) for _ in range(12)}
    assert seen == {(64, 32), (16,)}
    trial = study.ask()
    assert 4 <= suggest(trial, "embedding_dimension", Range(4, 16, step=4)) <= 16
    assert isinstance(trial.params["embedding_dimension"], int)


@pytest.mark.parametrize("kwargs, message", [
    ({"space": {}}, r"space=\{\}; expected a non-empty mapping"),
    ({"space": {"hidden_units": Range(1, 4)}}, r"space\['hidden_units'\]: a Range, but hidden_units takes a list"),
    ({"space": {"learning_rate": Range(0.3, 0.01)}}, r"space\['learning_rate'\]: .*expected low < high"),
    ({"space": {"learning_rate": Range(0.0, 0.3, log=True)}}, r"a log range needs low > 0"),
    ({"space": {"embedding_dimension": Range(2.5, 8)}}, r"embedding_dimension is an int"),
    ({"space": {"optimizer": Choice("Adamw")}}, r"optimizer got 'Adamw'; expected one of \['Adagrad'"),
    ({"space": {"dropout": Choice(1.5)}}, r"dropout got 1.5; expected a float in \[0, 1\)"),
    ({"space": {"units": Choice(1)}}, r"unknown hyperparameter 'units'; expected one of \['batch_norm'"),
    ({"trials": 0}, r"Tuner got trials=0; expected an int >= 1"),
    ({"steps": 1.5}, r"Tuner got steps=1.5; expected an int >= 1"),
    ({"metric": "mse"}, r"Tuner got metric='mse'; expected one of \['accuracy', 'auc'"),
    ({"direction": "minimize"}, r"direction='minimize' for metric='auc'; auc is better when it is higher"),
    ({"sampler": "grid"}, r"sampler='grid'; expected one of \['tpe', 'random'\]"),
    ({"storage": "mydb"}, r"storage='mydb'; expected a SQLAlchemy URL"),
    ({"study_name": ""}, r"study_name=''; expected a non-empty str"),
])
def test_bad_tuner_parameters_name_the_argument(kwargs, message):
    arguments = {"space": {"learning_rate": Range(0.01, 0.3, log=True)}, **kwargs}
    with pytest.raises(ValueError, match=message + ".*How to fix"):
        TunerParameters(_canned(), **arguments)


def test_bad_pruner_and_a_space_the_features_lack():
    with pytest.raises(ValueError, match=r"Pruner got kind='asha'; expected one of \['median', 'hyperband', 'none'\]"):
        Pruner("asha")
    with pytest.raises(ValueError, match=r"Pruner got startup_trials=-1; expected an int >= 0"):
        Pruner(startup_trials=-1)
    with pytest.raises(ValueError, match=r"'embedding_dimension' needs an embedding feature"):
        TunerParameters(CannedEstimatorConfig("DNNClassifier", feature_spec=FeatureSpec(
            features=(Numeric("fare"),), label=Label("big_tipper"))), {"embedding_dimension": Choice(4)})


def test_trainer_and_tuner_take_channels(tmp_path):
    from components.trainer import Trainer
    from pipeline.yaml_spec import build_pipeline

    p = build_pipeline(_load(tmp_path), root=str(tmp_path / "root"))
    transform, schema = p.component("Transform"), p.component("SchemaGen").outputs["schema"]
    examples, graph = transform.outputs["transformed_examples"], transform.outputs["transform_graph"]
    with pytest.raises(TypeError, match=r"Trainer got hyperparameters='best.json'; expected a Channel of "
                                        r"HyperParameters.*How to fix"):
        Trainer(examples, graph, schema, canned=_canned(), hyperparameters="best.json")
    with pytest.raises(TypeError, match=r"Tuner got examples=.*expected a Channel of Examples, not Schema"):
        Tuner(schema, graph, canned=_canned(), space={"dropout": Choice(0.1)})
    tuner = Tuner(examples, graph, canned=_canned(), space={"dropout": Choice(0.1)}, id="MyTuner")
    trainer = Trainer(examples, graph, schema, canned=_canned(), hyperparameters=tuner.outputs["best_hyperparameters"])
    assert trainer.upstream[-1] is tuner and tuner.id == "MyTuner"


# ------------------------------------------------------------------ the YAML tuning section

@pytest.mark.parametrize("override, message", [
    ("tuning={trials: 0, space: {learning_rate: [0.1]}}", r"tuning.trials: Input should be greater than or equal "
                                                          r"to 1"),
    ("tuning={trials: 2}", r"tuning.space: Field required"),
    ("tuning={trials: 2, space: {}}", r"tuning.space: empty; expected hyperparameters"),
    ("tuning={trials: 2, space: {hidden_unit: [[8]]}}", r"tuning.space.hidden_unit: unknown hyperparameter"),
    ("tuning={trials: 2, space: {hidden_units: {low: 1, high: 4}}}",
     r"tuning.space.hidden_units: a Range, but hidden_units takes a list of choices"),
    ("tuning={trials: 2, space: {hidden_units: [[0]]}}", r"tuning.space.hidden_units: hidden_units got \[0\]"),
    ("tuning={trials: 2, space: {learning_rate: {low: 0.3, high: 0.01}}}",
     r"tuning.space.learning_rate: Range\(low=0.3, high=0.01\); expected low < high"),
    ("tuning={trials: 2, space: {learning_rate: {lo: 0, high: 0.3}}}",
     r"tuning.space.learning_rate: got keys \['high', 'lo'\]; a range takes low, high"),
    ("tuning={trials: 2, space: {learning_rate: 0.1}}",
     r"tuning.space.learning_rate: got 0.1; expected a list of choices or a range"),
    ("tuning={trials: 2, space: {learning_rate: {low: 0.01, high: 0.3, log: maybe}}}",
     r"tuning.space.learning_rate.log: got 'maybe'; expected true or false"),
    ("tuning={trials: 2, space: {optimizer: [Adam, Adam]}}", r"tuning.space.optimizer: .*repeats a value"),
    ("tuning={trials: 2, metric: mse, space: {dropout: [0.1]}}", r"tuning.metric: got 'mse'; expected one of"),
    ("tuning={trials: 2, direction: minimize, space: {dropout: [0.1]}}",
     r"tuning.direction: got 'minimize', but auc is better when higher"),
    ("tuning={trials: 2, direction: up, space: {dropout: [0.1]}}", r"tuning.direction: Input should be"),
    ("tuning={trials: 2, storage: mydb, space: {dropout: [0.1]}}",
     r"tuning.storage: got 'mydb'; expected a SQLAlchemy URL"),
    ("tuning={trials: 2, pruner: {type: asha}, space: {dropout: [0.1]}}", r"tuning.pruner.type: Input should be"),
    ("tuning={trials: 2, space: {dropout: [0.1]}, extra: 1}", r"tuning.extra: Extra inputs are not permitted"),
    ("model.estimator=LinearClassifier", r"tuning.space.hidden_units: 'hidden_units' does not apply to "
                                         r"LinearClassifier; expected one of \['batch_size'"),
    ("model=null", r"tuning: given without model"),
])
def test_bad_yaml_tuning_values_name_the_field(tmp_path, override, message):
    overrides = [override, "model.args={}"] if override.startswith("model.estimator") else [override]
    if override == "model=null":
        overrides += ["training=null"]
    with pytest.raises(ValueError, match=r"spec.yaml: " + message + r".*How to fix") as error:
        _load(tmp_path, *overrides)
    assert "\n" not in str(error.value)


def test_yaml_tuning_builds_the_tuner_and_feeds_the_trainer(tmp_path):
    from pipeline.yaml_spec import build_pipeline

    spec = _load(tmp_path, "tuning.pruner=none", "tuning.storage=postgresql+psycopg://db/optuna",
                 "tuning.steps=60", "training.eval_steps=7")
    p = build_pipeline(spec, root=str(tmp_path / "root"))
    tuner = p.component("Tuner").parameters
    assert tuner.canned == p.component("Trainer").parameters.canned  # it tunes the Trainer's model
    assert (tuner.trials, tuner.steps, tuner.eval_every, tuner.eval_steps) == (4, 60, 50, 7)
    assert tuner.pruner == Pruner("none") and tuner.storage == "postgresql+psycopg://db/optuna"
    assert tuner.space["learning_rate"] == Range(0.02, 0.3, log=True)
    assert tuner.space["hidden_units"] == Choice([64, 32], [16])
    trainer = p.component("Trainer")
    assert trainer.inputs["hyperparameters"].producer.id == "Tuner"
    default_steps = build_pipeline(_load(tmp_path), root=str(tmp_path / "root")).component("Tuner").parameters
    assert default_steps.steps == 150 and default_steps.storage is None  # training.steps; next to the outputs


def test_example_yaml_with_tuning_validates():
    from pipeline.yaml_spec import build_pipeline, load_spec

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = load_spec(os.path.join(repo, "pipeline", "examples", "taxi_tuning.yaml"))
    p = build_pipeline(spec, root="/tmp/unused-root")
    assert [c.id for c in p.components][5:8] == ["Tuner", "WarmStartResolver", "Trainer"]
    assert p.component("Tuner").parameters.canned == p.component("Trainer").parameters.canned


@pytest.mark.slow
def test_kill_9_during_a_trial_then_rerun_resumes_the_study(tmp_path):
    """The CLI runs the YAML pipeline; SIGKILL once a trial finished and the next one runs; the
    rerun (same fingerprint, same study in <root>/Tuner/studies.sqlite) keeps the finished trial, fails the
    killed one and retries its values."""
    import contextlib
    import signal
    import sqlite3
    import sys
    import time

    import optuna

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    taxi_slice(tmp_path / "data", rows=ROWS)
    _load(tmp_path)  # writes spec.yaml
    root, spec_path = str(tmp_path / "root"), str(tmp_path / "spec.yaml")
    storage = f"sqlite:///{os.path.join(root, 'Tuner', 'studies.sqlite')}"
    command = [sys.executable, "-m", "pipeline", "run", spec_path, "--root", root, "--to", "Trainer",
               "--set", "tuning.trials=3", "--set", "tuning.pruner=none", "--no-report"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def trials():
        try:  # never create Optuna's tables or stamp their version here: that is the child's job
            with contextlib.closing(sqlite3.connect(f"file:{storage[len('sqlite:///'):]}?mode=ro", uri=True)) as db:
                if not db.execute("SELECT count(*) FROM alembic_version").fetchone()[0]:
                    return []  # RDBStorage would stamp the version itself, racing the child
            rdb = optuna.storages.RDBStorage(storage, skip_table_creation=True, skip_compatibility_check=True)
            summaries = optuna.get_all_study_summaries(rdb)
            return optuna.load_study(study_name=summaries[0].study_name, storage=rdb).trials if summaries else []
        except Exception:  # noqa: BLE001 - no tables yet, or the child holds a write lock for a moment
            return []

    log = open(tmp_path / "first-run.log", "w")  # noqa: SIM115 - closed below
    child = subprocess.Popen(command, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (len(trials()) == 2 and trials()[1].state == optuna.trial.TrialState.RUNNING):
            assert child.poll() is None, (tmp_path / "first-run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "trial 1 never started"
            time.sleep(0.3)
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait()
        log.close()
    first = trials()[0]
    assert first.state == optuna.trial.TrialState.COMPLETE

    rerun = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = {t.number: t for t in trials()}
    assert (after[0].state, after[0].params, after[0].datetime_complete) == (
        first.state, first.params, first.datetime_complete)
    assert after[1].state == optuna.trial.TrialState.FAIL
    retry = [t for t in after.values() if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE
    assert retry[0].params == after[1].params
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in after.values()) == 3
