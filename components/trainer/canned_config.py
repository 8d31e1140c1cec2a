"""A canned estimator built from a typed config and the FeatureSpec (no user module).

The feature columns come from the same FeatureSpec that generated the Transform
preprocessing_fn, so the model's input layer always matches the transformed data:

| FeatureSpec | transformed feature | column (wide / linear) | column (deep / DNN) |
|---|---|---|---|
| Numeric | z-score float | numeric | numeric |
| Bucketized, Vocabulary, Hashed, Crossed | int ids | identity | indicator |
| Embedding(source) | (the source's ids) | - | embedding of the source |

BoostedTrees* take their own columns (`boosted_trees_columns`): every id feature as an
indicator of its identity column (each id a binary split, as tf.estimator did), and every
z-scored Numeric feature bucketized at the quantiles of a standard normal
(``NUMERIC_Z_BUCKETS`` buckets: the z-score makes these boundaries scale-free; a feature
far from normal gets uneven buckets, so give it as ``Bucketized`` for exact quantiles).

Example:
    >>> from components.feature_spec import FeatureSpec, Label, Numeric
    >>> config = CannedEstimatorConfig(
    ...     "LinearClassifier", feature_spec=FeatureSpec(features=(Numeric("fare"),),
    ...                                                  label=Label("big_tipper")))
    >>> config.estimator
    'LinearClassifier'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from components.feature_spec import Bucketized, Crossed, Embedding, FeatureSpec, Hashed, Numeric, Vocabulary
from components.trainer.fn_args import FnArgs, transformed_input_fn

CANNED_ESTIMATORS = ("LinearClassifier", "DNNClassifier", "DNNLinearCombinedClassifier",
                     "BaselineClassifier", "LinearRegressor", "DNNRegressor",
                     "DNNLinearCombinedRegressor", "BaselineRegressor",
                     "BoostedTreesClassifier", "BoostedTreesRegressor")
BOOSTED_TREES = ("BoostedTreesClassifier", "BoostedTreesRegressor")
# Buckets of a z-scored Numeric feature for boosted trees: cut at the standard normal's
# 1/32 ... 31/32 quantiles (the z-score's distribution when the feature is near normal).
NUMERIC_Z_BUCKETS = 32


@dataclasses.dataclass(frozen=True)
class CannedEstimatorConfig:
    """Which canned estimator to build, with what arguments, over which features.

    Attributes:
        estimator: A class name from ``trainer.canned`` (see CANNED_ESTIMATORS).
        feature_spec: The FeatureSpec given to Transform; its label is the label.
        kwargs: Extra JSON-serializable constructor arguments, e.g.
            ``{"dnn_hidden_units": [16, 8]}`` (feature columns, model_dir and config are set here).
        batch_size: Examples per training and evaluation batch.
        random_seed: ``RunConfig.tf_random_seed`` (initial weights, shuffling); None: not seeded.
        save_checkpoints_steps: A checkpoint every this many steps (a Trainer killed mid-way
            resumes from the newest); None: every 600 seconds, as tf.estimator did.
    """

    estimator: str
    feature_spec: FeatureSpec
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 64
    random_seed: int | None = None
    save_checkpoints_steps: int | None = 100

    def __post_init__(self) -> None:
        if self.estimator not in CANNED_ESTIMATORS:
            raise ValueError(
                f"CannedEstimatorConfig got estimator={self.estimator!r}; expected one of "
                f"{list(CANNED_ESTIMATORS)}. How to fix: pick a canned estimator, or pass a "
                "module_file with trainer_fn to the Trainer.")
        if not isinstance(self.feature_spec, FeatureSpec) or self.feature_spec.label is None:
            raise ValueError(
                f"CannedEstimatorConfig got feature_spec={self.feature_spec!r}; expected a FeatureSpec "
                "with a label. How to fix: pass the Transform's FeatureSpec, with label=Label(...).")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(
                f"CannedEstimatorConfig got batch_size={self.batch_size!r}; expected an int >= 1. "
                "How to fix: pass e.g. batch_size=64.")
        steps = self.save_checkpoints_steps
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ValueError(
                f"CannedEstimatorConfig got save_checkpoints_steps={steps!r}; expected an int >= 1 or "
                "None. How to fix: pass e.g. save_checkpoints_steps=100.")


def feature_columns(spec: FeatureSpec, transform_graph_path: str) -> tuple[list, list]:
    """Returns (wide columns, deep columns) for the transformed features of ``spec``."""
    import tensorflow_transform as tft

    from trainer import feature_column as fc

    output = tft.TFTransformOutput(transform_graph_path)
    wide, deep, categorical = [], [], {}
    for feature in spec.features:
        if isinstance(feature, Numeric):
            column = fc.numeric_column(feature.name)
            wide.append(column)
            deep.append(column)
            continue
        if isinstance(feature, Embedding):
            continue
        if isinstance(feature, Bucketized):
            size = feature.num_buckets
        elif isinstance(feature, Vocabulary):
            size = output.vocabulary_size_by_name(feature.name) + feature.num_oov_buckets
        elif isinstance(feature, (Hashed, Crossed)):
            size = feature.hash_bucket_size
        categorical[feature.name] = fc.categorical_column_with_identity(feature.name, size)
    embedded = {f.source for f in spec.features if isinstance(f, Embedding)}
    for name, column in categorical.items():
        wide.append(column)
        if name not in embedded:
            deep.append(fc.indicator_column(column))
    for feature in spec.features:
        if isinstance(feature, Embedding):
            deep.append(fc.embedding_column(categorical[feature.source], feature.dimension))
    return wide, deep


def boosted_trees_columns(spec: FeatureSpec, transform_graph_path: str) -> list:
    """The BoostedTrees* columns: indicators of the id features, bucketized z-scores (see above)."""
    from statistics import NormalDist

    from trainer import feature_column as fc

    wide, _ = feature_columns(spec, transform_graph_path)
    normal = NormalDist()
    boundaries = [normal.inv_cdf(i / NUMERIC_Z_BUCKETS) for i in range(1, NUMERIC_Z_BUCKETS)]
    columns = []
    for column in wide:
        if isinstance(column, fc.NumericColumn):
            columns.append(fc.bucketized_column(column, boundaries))
        else:
            columns.append(fc.indicator_column(column))
    return columns


def build_estimator(config: CannedEstimatorConfig, transform_graph_path: str, *, model_dir: str,
                    warm_start_from: str | None = None):
    """Builds the canned estimator of ``config`` writing to ``model_dir``."""
    import trainer

    kwargs = dict(config.kwargs)
    name = config.estimator
    config_ = trainer.RunConfig(tf_random_seed=config.random_seed,
                                save_checkpoints_steps=config.save_checkpoints_steps)
    if name in BOOSTED_TREES:
        from trainer.canned import boosted_trees

        if warm_start_from:
            raise ValueError(
                f"build_estimator got warm_start_from={warm_start_from!r} for {name}; boosted trees "
                "grow their ensemble from scratch (tf.estimator's could not warm-start either). How to "
                "fix: train without a base model.")
        kwargs["feature_columns"] = boosted_trees_columns(config.feature_spec, transform_graph_path)
        kwargs.setdefault("n_batches_per_layer", 1)
        return getattr(boosted_trees, name)(model_dir=model_dir, config=config_, **kwargs)
    wide, deep = feature_columns(config.feature_spec, transform_graph_path)
    if name.startswith("DNNLinearCombined"):
        kwargs.update(linear_feature_columns=wide, dnn_feature_columns=deep)
        kwargs.setdefault("dnn_hidden_units", [32, 16])
    elif name.startswith("DNN"):
        kwargs.update(feature_columns=deep)
        kwargs.setdefault("hidden_units", [32, 16])
    elif name.startswith("Linear"):
        kwargs.update(feature_columns=wide)
    if warm_start_from:
        kwargs["warm_start_from"] = warm_start_from
    return getattr(trainer, name)(model_dir=model_dir, config=config_, **kwargs)


def canned_trainer_fn(config: CannedEstimatorConfig, fn_args: FnArgs, *,
                      warm_start_from: str | None = None) -> dict[str, Any]:
    """What a user's ``trainer_fn`` returns, for a canned model: the estimator and its specs.

    The Trainer trains this; the Tuner trains one per trial (with the trial's values applied
    to ``config`` and its own model_dir in ``fn_args.model_run_dir``), so both read the
    transformed examples and build the model the same way.

    Returns:
        ``{"estimator", "train_spec", "eval_spec"}``: train to ``fn_args.train_steps`` on
        ``fn_args.train_files`` (shuffled, repeated); evaluate ``fn_args.eval_steps`` batches
        of ``fn_args.eval_files`` (one pass, in order).
    """
    import trainer

    estimator = build_estimator(config, fn_args.transform_graph_path, model_dir=fn_args.model_run_dir,
                                warm_start_from=warm_start_from)
    train_input = transformed_input_fn(fn_args.train_files, fn_args.transform_graph_path,
                                       label_key=fn_args.label_key, batch_size=config.batch_size)
    eval_input = transformed_input_fn(fn_args.eval_files, fn_args.transform_graph_path,
                                      label_key=fn_args.label_key, batch_size=config.batch_size,
                                      num_epochs=1, shuffle=False)
    return {"estimator": estimator,
            "train_spec": trainer.TrainSpec(train_input, max_steps=fn_args.train_steps),
            "eval_spec": trainer.EvalSpec(eval_input, steps=fn_args.eval_steps, throttle_secs=0)}
