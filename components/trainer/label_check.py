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
