"""What a user's ``trainer_fn`` receives, and the input_fn over transformed examples.

Example:
    >>> args = FnArgs(train_files=("/data/train/*.gz",), eval_files=("/data/eval/*.gz",),
    ...               transform_graph_path="/tft", schema_path="/schema.pbtxt",
    ...               train_steps=100, eval_steps=10, serving_model_dir="/out/serving",
    ...               model_run_dir="/out/run")
    >>> args.train_steps
    100
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class FnArgs:
    """The arguments of ``trainer_fn(fn_args[, schema])`` and ``run_fn(fn_args)`` (TFX's FnArgs,
    typed and frozen). TFX's names ``transform_output``, ``schema_file`` and ``working_dir`` are
    read-only aliases of ``transform_graph_path``, ``schema_path`` and ``model_run_dir``.

    Attributes:
        train_files: Glob patterns of the transformed training examples (gzip TFRecords).
        eval_files: Glob patterns of the transformed evaluation examples.
        transform_graph_path: The Transform output directory (``tft.TFTransformOutput(path)``).
        schema_path: The raw data's ``schema.pbtxt``.
        train_steps: Absolute number of training steps.
        eval_steps: Batches per evaluation (None: the whole eval split).
        serving_model_dir: Where the Trainer writes the serving SavedModel.
        model_run_dir: The Estimator's model_dir (checkpoints, TensorBoard logs).
        base_model: A checkpoint prefix to warm-start from (the latest blessed Model's), or None.
        custom_config: Free-form user settings from the component.
        label_key: The label column (from the FeatureSpec, or given to the Trainer).
        hyperparameters: The Tuner's best values (name -> value), empty without a
            ``hyperparameters`` input; a trainer_fn builds its model from them.
    """

    train_files: tuple[str, ...]
    eval_files: tuple[str, ...]
    transform_graph_path: str
    schema_path: str
    train_steps: int
    eval_steps: int | None
    serving_model_dir: str
    model_run_dir: str
    base_model: str | None = None
    custom_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    label_key: str | None = None
    hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    # TFX's names for the same values, so TFX module files run unchanged.
    @property
    def transform_output(self) -> str:
        """TFX's name of ``transform_graph_path`` (``tft.TFTransformOutput(fn_args.transform_output)``)."""
        return self.transform_graph_path

    @property
    def schema_file(self) -> str:
        """TFX's older name of ``schema_path``."""
        return self.schema_path

    @property
    def working_dir(self) -> str:
        """TFX's name of the Trainer's model_run directory (``model_run_dir``)."""
        return self.model_run_dir

    @property
    def data_accessor(self) -> Any:
        """Not provided: TFX's tfx-bsl DataAccessor. Read the files with `transformed_input_fn`."""
        raise AttributeError(
            "FnArgs has no data_accessor (TFX's tfx-bsl reader). How to fix: read fn_args.train_files / "
            "eval_files with components.trainer.transformed_input_fn(files, fn_args.transform_output, "
            "label_key=...), or with tf.data.TFRecordDataset(..., compression_type='GZIP') and "
            "tft.TFTransformOutput(fn_args.transform_output).transformed_feature_spec().")


def transformed_input_fn(file_patterns: Sequence[str], transform_graph_path: str, *, label_key: str,
                         batch_size: int = 64, num_epochs: int | None = None, shuffle: bool = True):
    """An Estimator input_fn reading transformed tf.Examples written by the Transform component.

    Args:
        file_patterns: Globs of gzip TFRecord files.
        transform_graph_path: Its ``transformed_feature_spec()`` parses the records.
        label_key: This feature is returned as the labels.
        batch_size: Examples per batch.
        num_epochs: None repeats forever (training); 1 reads once (evaluation).
        shuffle: Shuffle files and records.

    Returns:
        A function ``() -> tf.data.Dataset`` of ``(features, labels)``.
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(transform_graph_path).transformed_feature_spec()
    if label_key not in spec:
        raise ValueError(
            f"transformed_input_fn got label_key={label_key!r}; expected one of the transformed "
            f"features {sorted(spec)}. How to fix: pass the label the preprocessing_fn outputs.")

    def input_fn():
        files = tf.data.Dataset.list_files(list(file_patterns), shuffle=shuffle)
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        if shuffle:
            records = records.shuffle(10 * batch_size)
        records = records.repeat(num_epochs).batch(batch_size)
        parsed = records.map(lambda x: tf.io.parse_example(x, spec))
        return parsed.map(lambda features: (
            {k: v for k, v in features.items() if k != label_key}, features[label_key]))

    return input_fn
