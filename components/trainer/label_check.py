"""Before training: a classifier's label must have at least two values in the train split.

A single-class label used to train to the end, score AUC 0 and push nothing, with no word
why. The rule (`check_label`): for a classification head (a canned ``*Classifier``), fewer
than 2 distinct label values in the train split is an error; for a ``module_file`` trainer,
whose head is unknown, it is a warning in the run's report. The values come from the raw
statistics (the Trainer's optional ``statistics`` input) when they hold the label, else from
a scan of the transformed train split that stops at the second distinct value.

After training: metrics that one class leaves undefined (`undefined_metrics`) are recorded
as undefined, with the reason, instead of as the 0 the metric code returns.
"""

from __future__ import annotations

import dataclasses
import glob
from typing import Any

from components.base import ComponentError


def label_values_from_statistics(dataset: Any, label: str) -> tuple[int, list[Any]] | None:
    """(examples with the label, up to 2 of its distinct values) from one split's statistics.

    None when the statistics do not describe the label (e.g. it is derived in Transform).
    """
    for fs in dataset.features:
        name = fs.path.step[0] if fs.path.step else fs.name
        if name != label:
            continue
        if fs.HasField("string_stats"):
            s = fs.string_stats
            return s.common_stats.num_non_missing, [b.label for b in s.rank_histogram.buckets[:2]]
        n = fs.num_stats
        present = n.common_stats.num_non_missing
        if not present:
            return 0, []
        values = [n.min] if n.min == n.max else [n.min, n.max]
        return present, [int(v) if float(v).is_integer() else v for v in values]
    return None


def label_values_from_examples(file_pattern: str, transform_graph_path: str,
                               label: str) -> tuple[int, list[Any]] | None:
    """(examples read, up to 2 distinct label values) from transformed tf.Examples.

    Stops at the second distinct value, so a healthy label costs one batch; None when the
    transformed data has no such feature.
    """
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(transform_graph_path).transformed_feature_spec().get(label)
    files = sorted(glob.glob(file_pattern))
    if spec is None or not files:
        return None
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
               .map(lambda x: tf.io.parse_example(x, {label: spec})[label]))
    seen: list[Any] = []
    count = 0
    for batch in dataset:
        values = batch.values if isinstance(batch, tf.SparseTensor) else batch
        array = values.numpy().reshape(-1)
        count += int(batch.shape[0])
        for value in np.unique(array).tolist():
            value = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            if value not in seen:
                seen.append(value)
        if len(seen) >= 2:
            break
    return count, seen


def check_label(*, label: str, split: str, classifier: bool, found: tuple[int, list[Any]] | None,
                source: str, report: Any) -> None:
    """Raises (classifier) or reports (unknown head) a label with fewer than 2 values."""
    if found is None or len(found[1]) >= 2:
        return
    count, values = found
    what = (f"the single value {values[0]!r} in all {count} examples" if values
            else f"no value in its {count} examples")
    message = (f"Trainer got label {label!r} with {what} of split {split!r} ({source}); a classifier "
               "needs at least 2 classes. How to fix: check how the label is derived (ExampleGen "
               "derived_columns or the preprocessing_fn) and this span's data, or train a regressor.")
    if classifier:
        raise ComponentError(message)
    report("warning: " + message)


# Metric -> the label classes it needs (binary heads: 0 negative, 1 positive).
_NEEDS = {"auc": "both", "auc_precision_recall": "positive", "recall": "positive"}


def undefined_metrics(metrics: dict[str, float], split: str) -> dict[str, str]:
    """Metrics that the eval labels leave undefined -> why, from ``label/mean`` (binary heads).

    AUC needs both classes; AUC-PR and recall need positives. The metric code returns 0
    for them; the caller records them as undefined instead.
    """
    mean = metrics.get("label/mean")
    if mean not in (0.0, 1.0):
        return {}
    only = "0 (no positives)" if mean == 0.0 else "1 (no negatives)"
    reason = f"undefined: every label of split {split!r} is {only}"
    return {name: reason for name, needs in _NEEDS.items() if name in metrics
            and (needs == "both" or (needs == "positive" and mean == 0.0))}


# --- The label against the head --------------------------------------------------------------
#
# Before training, the label's type and values are compared with what the Estimator's head
# accepts (`head_info`): a classifier takes integer class ids in [0, n_classes), or strings
# listed in its label_vocabulary; a regressor takes numbers. The values come from the raw
# statistics when they describe the label with the transformed label's type, and any problem
# they show is confirmed on the transformed train split before it is an error (a
# preprocessing_fn may have changed the values, e.g. ``label - 1``); a label the statistics do
# not describe (derived in Transform) is read from the transformed split, at most
# SCAN_LIMIT examples.

SCAN_LIMIT = 100_000
_SHOWN = 10


@dataclasses.dataclass(frozen=True)
class HeadInfo:
    """What a head accepts as labels.

    Attributes:
        kind: ``classifier`` (binary or multi-class), ``regressor`` or ``multi_label``.
        n_classes: Classes of a classifier (2 for a binary head).
        label_vocabulary: The string labels of the classes, or None (integer ids).
        name: The head's class name, for messages.
    """

    kind: str
    n_classes: int | None = None
    label_vocabulary: tuple[str, ...] | None = None
    name: str = ""


def head_info(estimator: Any) -> HeadInfo | None:
    """The label contract of ``estimator.head`` (canned estimators), or None when unknown."""
    from trainer import heads

    head = getattr(estimator, "head", None)
    vocabulary = getattr(head, "label_vocabulary", None)
    vocabulary = tuple(str(v) for v in vocabulary) if vocabulary is not None else None
    name = type(head).__name__
    if isinstance(head, heads.BinaryClassHead):
        return HeadInfo("classifier", 2, vocabulary, name)
    if isinstance(head, heads.MultiClassHead):
        return HeadInfo("classifier", head.n_classes, vocabulary, name)
    if isinstance(head, heads.MultiLabelHead):
        return HeadInfo("multi_label", head.n_classes, vocabulary, name)
    if isinstance(head, (heads.RegressionHead, heads.LogisticRegressionHead, heads.PoissonRegressionHead)):
        return HeadInfo("regressor", None, None, name)
    return None


@dataclasses.dataclass(frozen=True)
class LabelValues:
    """What is known of a label's values in one split.

    Attributes:
        kind: ``int``, ``float`` or ``string``.
        count: Examples holding the label (read, for a scan).
        values: Distinct values seen (at most 1000; for numbers from statistics: min and max).
        minimum, maximum: Numeric range, or None.
        unique: Number of distinct values when known (string statistics, a complete scan).
        first_bad: The first value a scan found that the head refuses, or None.
        source: Where they come from, for messages.
    """

    kind: str
    count: int
    values: tuple[Any, ...]
    minimum: float | None = None
    maximum: float | None = None
    unique: int | None = None
    first_bad: Any = None
    source: str = ""


def _kind_of_dtype(dtype: Any) -> str:
    if dtype.is_floating:
        return "float"
    if dtype.is_integer or dtype.is_bool:
        return "int"
    return "string"


def _number(value: float) -> Any:
    return int(value) if float(value).is_integer() else float(value)


def label_values_from_statistics_full(dataset: Any, label: str) -> LabelValues | None:
    """`LabelValues` of ``label`` in one split's raw statistics, or None if they lack it."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for fs in dataset.features:
        name = fs.path.step[0] if fs.path.step else fs.name
        if name != label:
            continue
        if fs.HasField("string_stats"):
            s = fs.string_stats
            values = tuple(b.label for b in s.rank_histogram.buckets) or tuple(v.value for v in s.top_values)
            return LabelValues("string", s.common_stats.num_non_missing, values, unique=s.unique or None,
                               source="from the statistics")
        n = fs.num_stats
        kind = "float" if fs.type == statistics_pb2.FeatureNameStatistics.FLOAT else "int"
        present = n.common_stats.num_non_missing
        if not present:
            return LabelValues(kind, 0, (), source="from the statistics")
        values = (_number(n.min),) if n.min == n.max else (_number(n.min), _number(n.max))
        return LabelValues(kind, present, values, minimum=n.min, maximum=n.max, source="from the statistics")
    return None


def _refused(head: HeadInfo, kind: str):
    """A numpy predicate of the label values ``head`` refuses, or None when all pass."""
    import numpy as np

    if head.kind != "classifier":
        return None
    if kind == "string":
        vocabulary = np.array([v.encode() for v in head.label_vocabulary or ()], dtype=object)
        return lambda a: ~np.isin(a, vocabulary)
    n = head.n_classes
    return lambda a: (a < 0) | (a >= n) | (np.floor(a) != a)


def scan_label(file_pattern: str, transform_graph_path: str, label: str, head: HeadInfo | None,
               *, limit: int | None = SCAN_LIMIT) -> LabelValues | None:
    """Reads the transformed label: kind, distinct values, range, and the first value ``head``
    refuses. Stops at that value or after ``limit`` examples (None: the whole split)."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(transform_graph_path).transformed_feature_spec().get(label)
    files = sorted(glob.glob(file_pattern))
    if spec is None or not files:
        return None
    kind = _kind_of_dtype(spec.dtype)
    refused = _refused(head, kind) if head is not None else None
    dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
               .map(lambda x: tf.io.parse_example(x, {label: spec})[label]))
    distinct: set[Any] = set()
    count, low, high, first_bad, complete = 0, None, None, None, True
    for batch in dataset:
        values = batch.values if isinstance(batch, tf.SparseTensor) else batch
        array = values.numpy().reshape(-1)
        count += int(batch.shape[0])
        if array.size == 0:
            continue
        if kind != "string":
            low = float(array.min()) if low is None else min(low, float(array.min()))
            high = float(array.max()) if high is None else max(high, float(array.max()))
        if len(distinct) <= 1000:
            distinct.update(np.unique(array).tolist())
        if refused is not None:
            bad = array[refused(array)]
            if bad.size:
                first_bad, complete = bad[0], False
                break
        if limit is not None and count >= limit:
            complete = False
            break
    decode = (lambda v: v.decode("utf-8", "replace")) if kind == "string" else _number
    values = tuple(sorted(decode(v) for v in distinct))[:1000]
    shown_bad = None if first_bad is None else decode(first_bad.item() if hasattr(first_bad, "item") else first_bad)
    read = f"all {count}" if complete else f"the first {count}"
    return LabelValues(kind, count, values, minimum=low, maximum=high,
                       unique=len(distinct) if complete and len(distinct) <= 1000 else None, first_bad=shown_bad,
                       source=f"from {read} transformed examples")


def _shown(values: Any) -> str:
    values = list(values)
    more = f", ... ({len(values)} in all)" if len(values) > _SHOWN else ""
    return ", ".join(repr(v) for v in values[:_SHOWN]) + more


def head_problem(*, label: str, split: str, head: HeadInfo, kind: str, found: LabelValues | None) -> str | None:
    """Why ``head`` cannot train on this label (one sentence with a How to fix), or None.

    Args:
        label: The label column.
        split: The train split's name.
        head: What the head accepts.
        kind: The transformed label's kind (``int``, ``float``, ``string``).
        found: Its values (statistics or a scan), or None when unknown.
    """
    where = f"label {label!r} (split {split!r}"
    where += f", {found.source})" if found is not None else ")"
    if head.kind == "regressor":
        if kind == "string":
            return (f"Trainer got string {where} for the regressor head {head.name}; a regressor needs "
                    "numbers. How to fix: convert the label to a number in the preprocessing_fn, or train "
                    "a classifier with label_vocabulary.")
        return None
    if head.kind != "classifier":
        return None
    n = head.n_classes
    if kind == "string" and head.label_vocabulary is None:
        seen = f" with values {_shown(found.values)}" if found is not None and found.values else ""
        return (f"Trainer got string {where}{seen} for the {n}-class head {head.name} without a "
                "label_vocabulary; a classifier without one takes integer class ids. How to fix: pass "
                f"label_vocabulary=[...] (the {n} class names, class 0 first), or map the label to ids in "
                "the preprocessing_fn (tft.compute_and_apply_vocabulary).")
    if found is None:
        return None
    if kind == "string":
        vocabulary = set(head.label_vocabulary)
        unknown = [v for v in found.values if v not in vocabulary]
        if found.first_bad is not None and found.first_bad not in unknown:
            unknown.insert(0, found.first_bad)
        if unknown:
            return (f"Trainer got {where} with values {_shown(unknown)} not in the head's label_vocabulary "
                    f"{list(head.label_vocabulary)}. How to fix: list every class in label_vocabulary "
                    "(and n_classes to match), or filter those rows out in ExampleGen.")
        return None
    bad = found.first_bad
    if bad is None:
        bad = next((v for v in found.values if v < 0 or v >= n or not float(v).is_integer()), None)
    if bad is None:
        return None
    if not float(bad).is_integer():
        return (f"Trainer got float {where} with the value {bad!r} for the classifier head {head.name}; "
                "a classifier takes integer class ids (a float is truncated). How to fix: round or map the "
                "label to ids in the preprocessing_fn, or train a regressor.")
    span = ""
    if found.minimum is not None and found.maximum is not None:
        span = f"; values range over [{_number(found.minimum)}, {_number(found.maximum)}]"
    return (f"Trainer got {where}: labels must be integer class ids in [0, {n}); first bad label: {bad}{span}. "
            f"How to fix: map the label to ids 0..{n - 1} in the preprocessing_fn (e.g. label - 1, or "
            "tft.compute_and_apply_vocabulary), or set n_classes to the number of classes.")


def fewer_classes_warning(*, label: str, split: str, head: HeadInfo, found: LabelValues | None) -> str | None:
    """A warning when a complete view of the label shows fewer classes than the head has."""
    if head.kind != "classifier" or found is None or found.unique is None or found.unique >= (head.n_classes or 0):
        return None  # (unique is None: not known from numeric statistics, or a scan that stopped early)
    return (f"warning: label {label!r} has {found.unique} distinct values in split {split!r} ({found.source}) "
            f"but the head {head.name} has {head.n_classes} classes; the missing classes are never learned.")
