"""Evaluator, task="multiclass": metric names mapped per task, binary metrics refused, and TFMA's
multi-class numbers checked against the same model's predictions computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from components.artifacts import Examples, Model
from components.base import ComponentError
from components.evaluator import Evaluator, EvaluatorParameters, MetricThreshold
from components.evaluator.metric_names import (
    DEFAULT_METRICS_BY_TASK, MULTICLASS_METRICS, TFMA_METRICS, resolve_metric)
from tests.components.helpers import execute
from tests.components.test_evaluator import SOURCE

CLASSES = ("low", "mid", "high")
CENTERS = (1.0, 5.0, 9.0)


def three_class_examples(tmp_path, rows=60, *, names=False):
    """x in [0, 10); the label is the nearest of CENTERS (1 example in 6 moved to the next class),
    as a class id or (``names``) its name in CLASSES; hour = i % 3 (a slice)."""
    import tensorflow as tf

    uri = tmp_path / ("named_examples" if names else "examples")
    (uri / "Split-eval").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(uri / "Split-eval" / "data-0.gz"), options="GZIP") as writer:
        for i in range(rows):
            x = (i * 7 % 100) / 10.0
            label = int(np.argmin([abs(x - c) for c in CENTERS]))
            if i % 6 == 0:
                label = (label + 1) % 3
            label_feature = (tf.train.Feature(bytes_list=tf.train.BytesList(value=[CLASSES[label].encode()]))
                             if names else tf.train.Feature(int64_list=tf.train.Int64List(value=[label])))
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
                "hour": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 3])),
                "species": label_feature})).SerializeToString())
    return Examples(uri=str(uri), properties={"split_names": ["eval"]}, id=3)


def three_class_model(tmp_path, sharpness, name, *, with_all_classes=True):
    """A SavedModel whose 'predict' signature gives probabilities = softmax(-sharpness * (x - c)^2)
    over CENTERS, class_ids and (``with_all_classes``) all_classes = CLASSES per example."""
    import tensorflow as tf

    module = tf.Module()
    module.s = tf.Variable(float(sharpness))

    def predict(serialized):
        x = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        logits = -module.s * tf.square(x - tf.constant([CENTERS]))
        outputs = {"probabilities": tf.nn.softmax(logits), "class_ids": tf.argmax(logits, axis=1)[:, None]}
        if with_all_classes:
            outputs["all_classes"] = tf.tile(tf.constant([CLASSES]), [tf.shape(x)[0], 1])
        return outputs

    uri = tmp_path / name
    tf.saved_model.save(module, str(uri / "Format-Serving" / "1"), signatures={"predict": tf.function(
        predict).get_concrete_function(tf.TensorSpec([None], tf.string, name="examples"))})
    return Model(uri=str(uri), properties={"serving_model": "Format-Serving/1"}, id=int(sharpness * 10) + 200)


def by_hand(examples, model):
    """(labels as class ids, float32 probabilities, hours) of every eval example, from the model itself."""
    import glob

    import tensorflow as tf

    files = sorted(glob.glob(f"{examples.uri}/Split-eval/*.gz"))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    parsed = tf.io.parse_example(records, {"species": tf.io.FixedLenFeature([1], tf.int64),
                                           "hour": tf.io.FixedLenFeature([1], tf.int64)})
    signature = tf.saved_model.load(f"{model.uri}/Format-Serving/1").signatures["predict"]
    probabilities = signature(examples=tf.constant(records))["probabilities"].numpy()
    return parsed["species"].numpy()[:, 0], probabilities, parsed["hour"].numpy()[:, 0]


def multiclass_evaluator(**kwargs):
    return Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key="species", task="multiclass",
                     slicing_features=(("hour",),), **kwargs)


def test_names_are_mapped_per_task_and_misfits_say_what_to_write():
    assert resolve_metric("SparseCategoricalAccuracy", "multiclass").module == "components.evaluator.multiclass_metrics"
    for written in ("CategoricalAccuracy", "accuracy", "Accuracy", "sparse_categorical_accuracy"):
        assert resolve_metric(written, "multiclass").class_name == "SparseCategoricalAccuracy"
    for written in ("SparseCategoricalCrossentropy", "CategoricalCrossentropy", "CategoricalCrossEntropy"):
        assert resolve_metric(written, "multiclass").class_name == "SparseCategoricalCrossentropy"
    assert resolve_metric("SparseCategoricalAccuracy", "classification").class_name == "BinaryAccuracy"
    assert resolve_metric("CategoricalCrossEntropy", "classification").class_name == "BinaryCrossEntropy"
    assert resolve_metric("MultiClassConfusionMatrixPlot", "multiclass").plot
    with pytest.raises(ValueError, match=r"metric='BinaryAccuracy' for a multiclass model; .* How to fix: use "
                                         r"'SparseCategoricalAccuracy'"):
        resolve_metric("BinaryAccuracy", "multiclass")
    with pytest.raises(ValueError, match=r"metric='AUC' for a multiclass model.*How to fix: use"):
        resolve_metric("AUC", "multiclass")
    with pytest.raises(ValueError, match=r"metric='MeanSquaredError' for a multiclass model; MeanSquaredError is a "
                                         r"regression metric"):
        resolve_metric("MeanSquaredError", "multiclass")
    with pytest.raises(ValueError, match=r"metric='Acuracy', unknown for a multiclass model; expected one of"):
        resolve_metric("Acuracy", "multiclass")
    with pytest.raises(ValueError, match=r"metric='SparseCategoricalCrossentropy' for a regression model; it is a "
                                         r"multiclass metric"):
        resolve_metric("SparseCategoricalCrossentropy", "regression")


def test_parameters_resolve_names_and_check_thresholds():
    params = EvaluatorParameters(label_key="species", task="multiclass",
                                 metrics=("ExampleCount", "CategoricalAccuracy", "SparseCategoricalAccuracy"),
                                 thresholds=(MetricThreshold("accuracy", lower_bound=0.8),))
    assert params.prediction_key == "probabilities"
    assert params.metrics == ("ExampleCount", "SparseCategoricalAccuracy")  # one metric, however written
    assert params.thresholds[0].metric == "SparseCategoricalAccuracy"
    assert EvaluatorParameters(label_key="y", task="multiclass").metrics == DEFAULT_METRICS_BY_TASK["multiclass"]
    with pytest.raises(ValueError, match=r"threshold on metric='SparseCategoricalCrossentropy', which is not "
                                         r"computed; expected one of the computed metrics"):
        EvaluatorParameters(label_key="y", task="multiclass", metrics=("SparseCategoricalAccuracy",),
                            thresholds=(MetricThreshold("SparseCategoricalCrossentropy", upper_bound=1.0),))
    with pytest.raises(ValueError, match=r"threshold on metric='MultiClassConfusionMatrixPlot', a plot"):
        EvaluatorParameters(label_key="y", task="multiclass",
                            thresholds=(MetricThreshold("MultiClassConfusionMatrixPlot", lower_bound=0.0),))
    with pytest.raises(ValueError, match=r"metric='BinaryAccuracy' for a multiclass model"):
        EvaluatorParameters(label_key="y", task="multiclass", metrics=("BinaryAccuracy",))
    with pytest.raises(NotImplementedError, match=r"task='multi_label': multi-label evaluation .* is not implemented"):
        EvaluatorParameters(label_key="y", task="multi_label")


def test_the_name_list_is_tfma_s():
    import tensorflow_model_analysis as tfma

    installed = {name for name in dir(tfma.metrics) if isinstance(getattr(tfma.metrics, name), type)
                 and issubclass(getattr(tfma.metrics, name), tfma.metrics.Metric)
                 and getattr(tfma.metrics, name) is not tfma.metrics.Metric}
    assert TFMA_METRICS == installed - {"AttributionsMetric"}  # a base class
    assert all(resolve_metric(name, "multiclass").class_name == name for name in MULTICLASS_METRICS)


@pytest.mark.slow
def test_multiclass_metrics_equal_the_model_s_own_predictions_per_slice_and_by_name(tmp_path):
    examples = three_class_examples(tmp_path)
    model = three_class_model(tmp_path, 0.5, "m")
    out = execute(multiclass_evaluator(thresholds=(MetricThreshold("SparseCategoricalAccuracy", lower_bound=0.7),)),
                  tmp_path / "run", {"examples": examples, "model": model})
    blessing = out["blessing"].properties
    assert blessing["blessed"] is True, blessing["reason"]
    metrics = blessing["metrics"]
    labels, probabilities, hours = by_hand(examples, model)
    n = len(labels)
    correct = np.argmax(probabilities, axis=1) == labels
    losses = -np.log(probabilities[np.arange(n), labels].astype(np.float64))
    assert metrics["example_count"] == n == 60
    # The same count of right answers over the same n: the division is the only float operation.
    assert metrics["sparse_categorical_accuracy"] == correct.sum() / n
    assert 0.7 < correct.mean() < 1.0  # the flipped labels are wrong: not a trivial 1.0
    # Per example, TFMA's -log p and ours read the same float32 probability from the same signature
    # (batched differently: at most ~1 float32 ulp of p, <= 1.2e-7 in -log p); over 60 terms < 1e-5.
    assert metrics["sparse_categorical_crossentropy"] == pytest.approx(losses.mean(), abs=1e-5)

    import tensorflow_model_analysis as tfma

    per_slice = {}
    for slice_metrics in tfma.load_metrics(out["evaluation"].uri):
        keys = slice_metrics.slice_key.single_slice_keys
        for entry in slice_metrics.metric_keys_and_values:
            if entry.key.name == "sparse_categorical_accuracy":
                per_slice[keys[0].int64_value if keys else None] = entry.value.double_value.value
    assert per_slice[None] == metrics["sparse_categorical_accuracy"]
    for hour in range(3):
        assert per_slice[hour] == correct[hours == hour].sum() / (hours == hour).sum()
    plots = list(tfma.load_plots(out["evaluation"].uri))
    assert any(entry.value.HasField("multi_class_confusion_matrix_at_thresholds")
               for plot in plots for entry in plot.plot_keys_and_values)

    # Class names as labels: TFMA maps them to ids through the model's all_classes output.
    named = three_class_examples(tmp_path, names=True)
    out = execute(multiclass_evaluator(), tmp_path / "run_named", {"examples": named, "model": model})
    named_metrics = out["blessing"].properties["metrics"]
    assert named_metrics["sparse_categorical_accuracy"] == metrics["sparse_categorical_accuracy"]
    assert named_metrics["sparse_categorical_crossentropy"] == pytest.approx(
        metrics["sparse_categorical_crossentropy"], abs=1e-9)

    # A change threshold: this over-confident model (-log p of a flipped label is 12 to 22) is worse
    # than a near-uniform baseline.
    blurry = three_class_model(tmp_path, 0.01, "blurry")
    blurry_labels, blurry_probabilities, _ = by_hand(examples, blurry)
    blurry_loss = -np.log(blurry_probabilities[np.arange(n), blurry_labels].astype(np.float64)).mean()
    assert losses.mean() > blurry_loss + 0.1  # the premise: worse by far more than any rounding
    change = Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key="species", task="multiclass",
                       baseline_model=SOURCE.outputs["baseline"], thresholds=(MetricThreshold(
                           "SparseCategoricalCrossentropy", min_change=0.0, higher_is_better=False),))
    worse = execute(change, tmp_path / "run_change", {"examples": examples, "model": model, "baseline_model": blurry})
    assert worse["blessing"].properties["metrics"]["sparse_categorical_crossentropy_diff"] == pytest.approx(
        losses.mean() - blurry_loss, abs=2e-5)  # two values each within 1e-5 (above)
    reason = worse["blessing"].properties["reason"]
    assert worse["blessing"].properties["blessed"] is False
    assert "sparse_categorical_crossentropy change vs baseline on overall" in reason


@pytest.mark.slow
def test_binary_metrics_over_three_classes_are_refused_before_tfma(tmp_path):
    examples, model = three_class_examples(tmp_path), three_class_model(tmp_path, 0.5, "m")
    binary = Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key="species",
                       prediction_key="probabilities", metrics=("ExampleCount", "BinaryAccuracy"))
    with pytest.raises(ComponentError, match=r"task='classification' \(binary metrics \['ExampleCount', "
                                             r"'BinaryAccuracy'\]\), but model \d+'s 'probabilities' output has 3 "
                                             r"classes. How to fix: Evaluator\(\.\.\., task='multiclass'"):
        execute(binary, tmp_path / "run", {"examples": examples, "model": model})
    with pytest.raises(ComponentError, match=r"has no 'logistic' output \(it has \['all_classes', 'class_ids', "
                                             r"'probabilities'"):
        execute(Evaluator(SOURCE.outputs["examples"], SOURCE.outputs["model"], label_key="species"),
                tmp_path / "run2", {"examples": examples, "model": model})
    # A string label the model cannot map to a class id is named, not scored as class -1.
    unnamed = three_class_model(tmp_path, 0.5, "unnamed", with_all_classes=False)
    with pytest.raises(ComponentError, match=r"Evaluator on split .eval.: multi-class metrics got the string label "
                                             r"\[b.mid.\], but the model.s predictions have no all_classes output.*"
                                             r"How to fix: return all_classes"):
        execute(multiclass_evaluator(), tmp_path / "run3",
                {"examples": three_class_examples(tmp_path, names=True), "model": unnamed})


def test_a_binary_single_probability_reads_as_two_classes():
    from components.evaluator.multiclass_metrics import class_id_and_probabilities

    class_id, probabilities = class_id_and_probabilities(np.array([1]), np.array([0.8], dtype=np.float32))
    assert class_id == 1 and np.allclose(probabilities, [0.2, 0.8])
    with pytest.raises(ValueError, match=r"got label -1; expected a class id in \[0, 3\)"):
        class_id_and_probabilities(np.array([-1]), np.array([0.2, 0.3, 0.5]))
