"""Multi-class end to end: the wine example in YAML (n_classes: 3) and the DSL (a custom model_fn),
`pipeline check` catching metric misfits without data, and the Evaluator's multi-class numbers
against the pushed model's own predictions and the Trainer's own eval loss."""

from __future__ import annotations

import glob
import os
import textwrap

import numpy as np
import pytest

from pipeline.yaml_model import string_labels_supported
from pipeline.yaml_spec import build_pipeline, load_spec
from tests.pipeline.e2e_helpers import ALL, MODEL_NODES, REPO

WINE_YAML = os.path.join(REPO, "pipeline", "examples", "wine.yaml")
WINE_PY = os.path.join(REPO, "pipeline", "examples", "wine_pipeline.py")


def test_wine_yaml_is_a_multiclass_pipeline(tmp_path):
    spec = load_spec(WINE_YAML)
    assert spec.task == "multiclass" and spec.feature_spec.label.dtype == "int"
    p = build_pipeline(spec, root=str(tmp_path))
    assert p.component("Trainer").parameters.canned.kwargs["n_classes"] == 3
    evaluator = p.component("Evaluator").parameters
    assert (evaluator.task, evaluator.prediction_key, evaluator.label_key) == ("multiclass", "probabilities",
                                                                            "cultivar")
    assert evaluator.metrics == ("ExampleCount", "SparseCategoricalAccuracy", "SparseCategoricalCrossentropy",
                                 "MultiClassConfusionMatrixPlot", "MultiClassConfusionMatrixAtThresholds")
    accuracy, crossentropy = evaluator.thresholds
    assert (accuracy.metric, accuracy.lower_bound, accuracy.min_change, accuracy.higher_is_better) == (
        "SparseCategoricalAccuracy", 0.85, -0.05, True)
    assert (crossentropy.metric, crossentropy.upper_bound, crossentropy.higher_is_better) == (
        "SparseCategoricalCrossentropy", 0.5, False)
    assert p.component("InfraValidator").parameters.request_kinds == ("classify", "predict")
    # Keras-style threshold names map to the same metric.
    keras = load_spec(WINE_YAML, overrides=["evaluation.thresholds={accuracy: {lower_bound: 0.9}}"])
    threshold, = build_pipeline(keras, root=str(tmp_path)).component("Evaluator").parameters.thresholds
    assert (threshold.metric, threshold.lower_bound) == ("SparseCategoricalAccuracy", 0.9)


def test_label_vocabulary_makes_a_string_label_or_says_it_cannot(tmp_path):
    overrides = ["model.args.label_vocabulary=[class_0, class_1, class_2]"]
    if not string_labels_supported():
        with pytest.raises(NotImplementedError, match=r"wine.yaml: model.args.label_vocabulary: string labels need"):
            load_spec(WINE_YAML, overrides=overrides)
        return
    spec = load_spec(WINE_YAML, overrides=overrides)
    assert spec.feature_spec.label.dtype == "string"
    canned = build_pipeline(spec, root=str(tmp_path)).component("Trainer").parameters.canned
    assert canned.kwargs["label_vocabulary"] == ["class_0", "class_1", "class_2"]


def test_multi_label_is_not_implemented(tmp_path):
    with pytest.raises(NotImplementedError, match=r"model.args.multi_label: multi-label classification"):
        load_spec(WINE_YAML, overrides=["model.args.multi_label=true"])


def test_tuning_a_multiclass_model_needs_a_multiclass_metric():
    tuning = ["tuning.trials=2", "tuning.space={learning_rate: {low: 0.01, high: 0.3}}"]
    with pytest.raises(ValueError, match=r"tuning.metric: missing; the default \(auc\) is a binary metric"):
        load_spec(WINE_YAML, overrides=tuning)
    with pytest.raises(ValueError, match=r"tuning.metric: got 'auc'; expected one of \['accuracy', 'average_loss'"):
        load_spec(WINE_YAML, overrides=[*tuning, "tuning.metric=auc"])
    assert load_spec(WINE_YAML, overrides=[*tuning, "tuning.metric=accuracy"]).tuning.metric == "accuracy"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_check_catches_metric_misfits_without_data(tmp_path, capsys):
    from pipeline.cli import main

    # YAML: a binary metric on a 3-class model, and an unknown one, name the field.
    assert main(["check", WINE_YAML, "--set", "evaluation.metrics=[BinaryAccuracy]"]) == 2
    err = capsys.readouterr().err
    assert "wine.yaml: evaluation.metrics[0]: got metric='BinaryAccuracy' for a multiclass model" in err
    assert "How to fix: use 'SparseCategoricalAccuracy'" in err
    assert main(["check", WINE_YAML, "--set", "evaluation.thresholds={auc: {lower_bound: 0.5}}"]) == 2
    assert "evaluation.thresholds.auc: 'auc' is a classification metric" in capsys.readouterr().err
    assert main(["check", WINE_YAML]) == 0
    assert "-> Evaluator ->" in capsys.readouterr().out

    # DSL: an Evaluator left binary under a 3-class canned Trainer, and one for another label.
    pipeline_py = _write(tmp_path, "p.py", f"""
        import sys
        sys.path.insert(0, {REPO!r})
        from components.evaluator import Evaluator, MetricThreshold
        from components.trainer import CannedEstimatorConfig, Trainer
        from pipeline.dsl import Pipeline
        from pipeline.examples import wine_pipeline as wine

        def create_pipeline(*, root="{tmp_path}/r", task="classification", metrics=("BinaryAccuracy",),
                            label="cultivar", thresholds=()):
            nodes = wine.create_pipeline(root=root).components[:5]
            transform = nodes[4]
            trainer = Trainer(transform.outputs["transformed_examples"], transform.outputs["transform_graph"],
                              nodes[2].outputs["schema"], canned=CannedEstimatorConfig(
                                  "DNNClassifier", feature_spec=wine.WINE_FEATURES, kwargs={{"n_classes": 3}}))
            evaluator = Evaluator(nodes[0].outputs["examples"], trainer.outputs["model"], label_key=label,
                                  task=task, metrics=tuple(metrics),
                                  thresholds=tuple(MetricThreshold(m, lower_bound=0.5) for m in thresholds))
            return Pipeline("p", root, [*nodes, trainer, evaluator])
        """)
    assert main(["check", pipeline_py]) == 2
    err = capsys.readouterr().err
    assert ("Evaluator 'Evaluator' got task='classification' (metrics ['BinaryAccuracy']), but 'Trainer' trains a "
            "3-class DNNClassifier (n_classes=3). How to fix: Evaluator(..., task='multiclass')") in err
    assert main(["check", pipeline_py, "--set", "task=multiclass", "--set", "metrics=[Accuracy]",
                 "--set", "label=species"]) == 2
    assert "got label_key='species', but 'Trainer' trains on label 'cultivar'" in capsys.readouterr().err
    assert main(["check", pipeline_py, "--set", "task=multiclass", "--set", "metrics=[BinaryAccuracy]"]) == 2
    assert "metric='BinaryAccuracy' for a multiclass model" in capsys.readouterr().err
    assert main(["check", pipeline_py, "--set", "task=multiclass", "--set", "metrics=[Accuracy]",
                 "--set", "thresholds=[CategoricalCrossentropy]"]) == 2
    assert ("threshold on metric='CategoricalCrossentropy', which is not computed; expected one of the computed "
            "metrics ['SparseCategoricalAccuracy']") in capsys.readouterr().err
    assert main(["check", pipeline_py, "--set", "task=multiclass", "--set", "metrics=[Accuracy]"]) == 0
    capsys.readouterr()
    assert main(["check", WINE_PY]) == 0


def eval_split(result):
    """Serialized raw eval tf.Examples and their cultivar labels, as the Evaluator read them."""
    import tensorflow as tf

    examples = result.outputs["ExampleGen"]["examples"]
    files = sorted(glob.glob(os.path.join(examples.uri, "Split-eval", "*")))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    labels = tf.io.parse_example(records, {"cultivar": tf.io.FixedLenFeature([], tf.int64)})["cultivar"].numpy()
    return records, labels


@pytest.mark.slow
def test_wine_yaml_pushes_a_3_class_model_whose_metrics_match_its_predictions(tmp_path):
    import tensorflow as tf

    from pipeline import LocalRunner

    root = str(tmp_path / "root")
    # push.tflite: a TF Lite model (raw tensors -> transform -> model) is pushed beside the SavedModel.
    spec = load_spec(WINE_YAML, overrides=["push.tflite={quantize: null}"])
    result = LocalRunner().run(build_pipeline(spec, root=root, beam_pipeline_args=["--direct_num_workers=1"]))
    assert result.executed == ALL + MODEL_NODES
    blessing = result.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "BLESSED", blessing["reason"]
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is True
    assert os.path.dirname(pushed["pushed_destination"]) == os.path.join(root, "serving", "wine")

    records, labels = eval_split(result)
    served = tf.saved_model.load(pushed["pushed_destination"])
    probabilities = served.signatures["predict"](examples=tf.constant(records))["probabilities"].numpy()
    assert probabilities.shape == (len(records), 3)
    metrics = blessing["metrics"]
    assert metrics["example_count"] == len(records) > 40
    # The Evaluator's accuracy is the count of right top classes over the same rows: exact.
    correct = int((np.argmax(probabilities, axis=1) == labels).sum())
    assert metrics["sparse_categorical_accuracy"] == correct / len(records) >= 0.85
    # Its cross-entropy: the mean of -log p[label] over the same float32 probabilities (batching
    # may move p by ~1 float32 ulp: <= 1.2e-7 per term).
    by_hand = -np.log(probabilities[np.arange(len(labels)), labels].astype(np.float64)).mean()
    assert metrics["sparse_categorical_crossentropy"] == pytest.approx(by_hand, abs=1e-6)
    # The Trainer's own eval loss on the same eval split (the head's average_loss: a float32 mean of
    # sparse_softmax_cross_entropy_with_logits, from Transform's materialized features rather than
    # the served graph's): per example <= ~2.4e-7 apart (one float32 ulp in p, one in the stable
    # log-softmax), the float32 running mean <= 60 * 6e-8 relative. 1e-5 absolute covers both.
    trainer_metrics = result.outputs["Trainer"]["model"].properties["metrics"]
    assert metrics["sparse_categorical_crossentropy"] == pytest.approx(trainer_metrics["average_loss"], abs=1e-5)
    assert metrics["sparse_categorical_crossentropy"] < 0.5

    classify = served.signatures["serving_default"](inputs=tf.constant(records[:4]))
    assert classify["scores"].shape == (4, 3)

    # The pushed TF Lite model (z-scoring and a DNN: builtin ops only) answers as the SavedModel.
    model = result.outputs["Trainer"]["model"].properties
    assert model["tflite_tensorflow_ops"] == [] and model["tflite_model"].endswith("model.tflite")
    runner = tf.lite.Interpreter(model_path=os.path.join(pushed["pushed_destination"], "model.tflite")
                                 ).get_signature_runner("serving_default")
    inputs = runner.get_input_details()
    assert set(inputs) == set(model["serving_raw_features"])
    parsed = tf.io.parse_example(records, {name: tf.io.FixedLenFeature(d["shape_signature"][1:], d["dtype"])
                                           for name, d in inputs.items()})
    lite = runner(**{name: value.numpy() for name, value in parsed.items()})
    # The same float32 transform and kernels on the same weights; only summation order may differ.
    np.testing.assert_allclose(lite["probabilities"], probabilities, atol=1e-5)


@pytest.mark.slow
def test_string_class_names_through_label_vocabulary_end_to_end(tmp_path):
    # The wine data with cultivar written as names: Transform passes the names, the model maps
    # them with label_vocabulary, the Evaluator maps them back through all_classes, and the
    # served model answers Classify with the names.
    import csv

    import tensorflow as tf

    from pipeline import LocalRunner

    names = ["barolo", "grignolino", "barbera"]
    data = tmp_path / "wine.csv"
    with open(os.path.join(REPO, "data", "wine", "data.csv"), encoding="utf-8", newline="") as f, \
            open(data, "w", encoding="utf-8", newline="") as out:
        rows = list(csv.DictReader(f))
        writer = csv.DictWriter(out, list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "cultivar": names[int(row["cultivar"])]} for row in rows)
    spec = load_spec(WINE_YAML, overrides=[f"data.path={data}", f"model.args.label_vocabulary={names}"])
    assert spec.feature_spec.label.dtype == "string"
    root = str(tmp_path / "root")
    result = LocalRunner().run(build_pipeline(spec, root=root, beam_pipeline_args=["--direct_num_workers=1"]))
    blessing = result.outputs["Evaluator"]["blessing"].properties
    assert blessing["verdict"] == "BLESSED", blessing["reason"]
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is True

    examples = result.outputs["ExampleGen"]["examples"]
    files = sorted(glob.glob(os.path.join(examples.uri, "Split-eval", "*")))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    labels = tf.io.parse_example(records, {"cultivar": tf.io.FixedLenFeature([], tf.string)})["cultivar"].numpy()
    served = tf.saved_model.load(pushed["pushed_destination"])
    probabilities = served.signatures["predict"](examples=tf.constant(records))["probabilities"].numpy()
    ids = np.array([names.index(label.decode()) for label in labels])
    # Exact: the share of rows whose top class is the labelled name (see the int-label test).
    assert blessing["metrics"]["sparse_categorical_accuracy"] == (probabilities.argmax(1) == ids).mean() >= 0.85
    classify = served.signatures["serving_default"](inputs=tf.constant(records[:3]))
    assert [c.decode() for c in classify["classes"].numpy()[0]] == names


@pytest.mark.slow
def test_boosted_trees_from_the_yaml_model_section_is_trained_judged_and_pushed(tmp_path):
    # The wine YAML with its model swapped for BoostedTreesClassifier: the Trainer builds it from
    # the model section (z-scored numerics bucketized), the Evaluator judges it with the same
    # thresholds, the InfraValidator serves it, and the pushed model answers as the Evaluator saw.
    import tensorflow as tf

    from pipeline import LocalRunner

    trees = ("model={estimator: BoostedTreesClassifier, args: {n_classes: 3, n_trees: 10, max_depth: 3, "
             "n_batches_per_layer: 4}}")
    spec = load_spec(WINE_YAML, overrides=[trees, "training.steps=120"])
    root = str(tmp_path / "root")
    result = LocalRunner().run(build_pipeline(spec, root=root, beam_pipeline_args=["--direct_num_workers=1"]))
    model = result.outputs["Trainer"]["model"].properties
    assert model["metrics"]["global_step"] == 120.0  # 10 trees x 3 layers x 4 batches: complete at 120
    blessing = result.outputs["Evaluator"]["blessing"].properties
    # wine.yaml's thresholds: accuracy >= 0.85 and cross-entropy <= 0.5. Measured: 0.953 (61 of 64
    # eval rows) and 0.108, with a seeded shuffle and a fixed split; 6 more wrong rows to fail.
    assert blessing["verdict"] == "BLESSED", blessing["reason"]
    pushed = result.outputs["Pusher"]["pushed_model"].properties
    assert pushed["pushed"] is True
    records, labels = eval_split(result)
    served = tf.saved_model.load(pushed["pushed_destination"])
    probabilities = served.signatures["predict"](examples=tf.constant(records))["probabilities"].numpy()
    # Exact: the Evaluator's accuracy is the share of right top classes of this same model.
    assert blessing["metrics"]["sparse_categorical_accuracy"] == (probabilities.argmax(1) == labels).mean()
