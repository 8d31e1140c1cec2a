"""Multi-class TFMA metrics over a class-id label and a probabilities vector.

TFMA 0.52 has no multi-class accuracy, and its ``CategoricalCrossEntropy`` expects a one-hot
label: given a class id it computes ``-id * sum(log p)`` (20.05 for a model whose loss is
0.0014). These two metrics take the label as TFMA prepares it for the model's
``prediction_key`` output: a class id, or a class name that TFMA has already mapped to its id
through the model's ``all_classes`` output (``-1`` when the name is not a class of the model).

- ``SparseCategoricalAccuracy`` (``sparse_categorical_accuracy``): the weighted share of
  examples whose highest probability is the label's class (ties: the lowest class id, as
  ``argmax`` in the model's ``class_ids``).
- ``SparseCategoricalCrossentropy`` (``sparse_categorical_crossentropy``): the weighted mean of
  ``-log p[label]``, which is what a softmax head's ``average_loss`` measures. A probability
  that underflowed to 0 in float32 counts as the smallest float32 (a loss of about 87.3).

A single probability (a binary classifier's ``logistic``) is read as ``[1 - p, p]``.
The Evaluator uses them for ``task="multiclass"`` (`components.evaluator.metric_names`); a
MetricConfig names them with ``module="components.evaluator.multiclass_metrics"``.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

ACCURACY_NAME = "sparse_categorical_accuracy"
CROSSENTROPY_NAME = "sparse_categorical_crossentropy"
_TINY = float(np.finfo(np.float32).tiny)


class SparseCategoricalAccuracy(metric_types.Metric):
    """Share of examples whose top class is the label (see the module docstring)."""

    def __init__(self, name: str = ACCURACY_NAME):
        super().__init__(metric_util.merge_per_key_computations(_accuracy_computations), name=name)


class SparseCategoricalCrossentropy(metric_types.Metric):
    """Mean ``-log p[label]`` (see the module docstring)."""

    def __init__(self, name: str = CROSSENTROPY_NAME):
        super().__init__(metric_util.merge_per_key_computations(_crossentropy_computations), name=name)


def _accuracy_computations(name=None, eval_config=None, model_name=None, output_name=None,
                           example_weighted=False, sub_key=None, aggregation_type=None, class_weights=None):
    return _computations("accuracy", name, eval_config, model_name, output_name, example_weighted, sub_key)


def _crossentropy_computations(name=None, eval_config=None, model_name=None, output_name=None,
                               example_weighted=False, sub_key=None, aggregation_type=None, class_weights=None):
    return _computations("crossentropy", name, eval_config, model_name, output_name, example_weighted, sub_key)


def _computations(kind, name, eval_config, model_name, output_name, example_weighted, sub_key):
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None, combiner=_Combiner(kind, key, eval_config))]


def class_id_and_probabilities(label: Any, prediction: Any) -> tuple[int, np.ndarray]:
    """(the label's class id, the class probabilities) of one example, as TFMA prepared them.

    Raises ValueError for a label that is not one class of the model.
    """
    probabilities = np.asarray(prediction, dtype=np.float64).reshape(-1)
    if probabilities.size == 1:
        probabilities = np.array([1.0 - probabilities[0], probabilities[0]])
    label = np.asarray(label).reshape(-1)
    if label.dtype.kind in "USO":
        raise ValueError(
            f"multi-class metrics got the string label {label.tolist()!r}, but the model's predictions have no "
            "all_classes output to map class names to ids. How to fix: return all_classes (the class names "
            "in id order, per example) from the model's predict signature, or label the data with class ids.")
    if label.size == probabilities.size and label.size > 1:  # one-hot (TFMA's form of an unknown name)
        if not np.isclose(label.sum(), 1.0):
            raise ValueError(
                f"multi-class metrics got a label that is not one of the model's {probabilities.size} classes "
                f"(one-hot form {label.tolist()}). How to fix: the label must be a class id in "
                f"[0, {probabilities.size}) or a name in the model's label_vocabulary.")
        return int(np.argmax(label)), probabilities
    if label.size != 1:
        raise ValueError(f"multi-class metrics got {label.size} label values for one example; expected one class "
                         "id. How to fix: multi-label evaluation is not implemented; use one label per example.")
    value = float(label[0])
    if not value.is_integer() or not 0 <= value < probabilities.size:
        raise ValueError(
            f"multi-class metrics got label {label.tolist()[0]!r}; expected a class id in [0, {probabilities.size}) "
            f"(the model has {probabilities.size} class probabilities; -1 is a class name TFMA did not find in "
            "the model's all_classes). How to fix: check the label column against the model's classes.")
    return int(value), probabilities


class _Combiner(beam.CombineFn):
    """Sums (weighted value, weight) over examples; outputs their ratio."""

    def __init__(self, kind: str, key: Any, eval_config: Any):
        self._kind, self._key, self._eval_config = kind, key, eval_config

    def create_accumulator(self) -> list[float]:
        return [0.0, 0.0]

    def add_input(self, accumulator: list[float], element: Any) -> list[float]:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, sub_key=self._key.sub_key,
                example_weighted=self._key.example_weighted, flatten=False):
            class_id, probabilities = class_id_and_probabilities(label, prediction)
            if self._kind == "accuracy":
                value = float(int(np.argmax(probabilities)) == class_id)
            else:
                value = -float(np.log(max(probabilities[class_id], _TINY)))
            w = float(np.asarray(weight, dtype=np.float64).reshape(-1)[0])
            accumulator[0] += value * w
            accumulator[1] += w
        return accumulator

    def merge_accumulators(self, accumulators: Any) -> list[float]:
        total = [0.0, 0.0]
        for accumulator in accumulators:
            total[0] += accumulator[0]
            total[1] += accumulator[1]
        return total

    def extract_output(self, accumulator: list[float]) -> dict[Any, float]:
        value = accumulator[0] / accumulator[1] if accumulator[1] else float("nan")
        return {self._key: value}
