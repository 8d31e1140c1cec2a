"""The preprocessing_fn generated from a FeatureSpec, and loading a user's module.

Mapping: numeric -> ``tft.scale_to_z_score``; bucketized -> ``tft.bucketize`` at
quantile boundaries; vocabulary -> ``tft.compute_and_apply_vocabulary``; hash ->
``tf.strings.to_hash_bucket_fast``; crossed -> hash of the joined key values;
embedding -> nothing here (the trainer embeds its source's ids); the label is
passed through as int64 (``Label.dtype="int"``, class ids) or float32 (``"float"``, a
regression target). Missing values are filled (numbers: ``default``,
strings: "").
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from components.base import ComponentError
from components.feature_spec import Bucketized, Crossed, Embedding, FeatureSpec, Hashed, Numeric, Vocabulary

CROSS_SEPARATOR = "_X_"


def make_preprocessing_fn(spec: FeatureSpec, *, label_dtype: str | None = None) -> Callable[[dict], dict]:
    """Returns a tf.Transform preprocessing_fn for ``spec``.

    ``label_dtype`` ("int", "float" or "string") overrides ``spec.label.dtype``.
    """
    if label_dtype is None:
        label_dtype = spec.label.dtype if spec.label is not None else "int"

    def preprocessing_fn(inputs: dict[str, Any]) -> dict[str, Any]:
        import tensorflow as tf
        import tensorflow_transform as tft

        outputs = {}
        for feature in spec.features:
            if isinstance(feature, Numeric):
                x = tf.cast(_dense(inputs[feature.name], feature.default), tf.float32)
                outputs[feature.name] = tft.scale_to_z_score(x)
            elif isinstance(feature, Bucketized):
                x = tf.cast(_dense(inputs[feature.name], feature.default), tf.float32)
                outputs[feature.name] = tft.bucketize(x, feature.num_buckets)
            elif isinstance(feature, Vocabulary):
                outputs[feature.name] = tft.compute_and_apply_vocabulary(
                    _as_string(inputs[feature.name]), top_k=feature.top_k,
                    num_oov_buckets=feature.num_oov_buckets, vocab_filename=feature.name)
            elif isinstance(feature, Hashed):
                outputs[feature.name] = tf.strings.to_hash_bucket_fast(
                    _as_string(inputs[feature.name]), feature.hash_bucket_size)
            elif isinstance(feature, Crossed):
                joined = tf.strings.join([_as_string(inputs[k]) for k in feature.keys],
                                         separator=CROSS_SEPARATOR)
                outputs[feature.name] = tf.strings.to_hash_bucket_fast(joined, feature.hash_bucket_size)
            elif isinstance(feature, Embedding):
                continue
        if spec.label is not None and spec.label.name in inputs:
            if label_dtype == "string":  # class names: the model's label_vocabulary maps them
                outputs[spec.label.name] = _as_string(inputs[spec.label.name])
            else:
                label = _dense(inputs[spec.label.name], 0)
                outputs[spec.label.name] = tf.cast(label, tf.int64 if label_dtype == "int" else tf.float32)
        return outputs

    return preprocessing_fn


def _dense(x: Any, default: Any) -> Any:
    """A [batch] tensor from a [batch, 1] dense or sparse (possibly missing) single value."""
    import tensorflow as tf

    if isinstance(x, tf.SparseTensor):
        if x.dtype == tf.string:
            default = str(default) if not isinstance(default, str) else default
        else:
            default = tf.cast(default, x.dtype)
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, tf.stack([x.dense_shape[0], 1])), default_value=default)
    elif isinstance(x, tf.RaggedTensor):
        x = x.to_tensor(default_value=default, shape=[None, 1])
    return tf.reshape(x, [-1])


def _as_string(x: Any) -> Any:
    import tensorflow as tf

    is_string = x.dtype == tf.string
    x = _dense(x, "" if is_string else 0)
    return x if is_string else tf.strings.as_string(x)


def check_columns(spec: FeatureSpec, schema: Any) -> None:
    """Raises if the spec reads a column that the schema does not have."""
    columns = {f.name for f in schema.feature}
    for name in spec.raw_columns:
        if name not in columns:
            raise ComponentError(
                f"Transform got feature_spec column {name!r}; the schema has no such column "
                f"(it has {sorted(columns)}). How to fix: fix the feature name or the data.")


def load_user_fn(module_file: str, name: str) -> Callable[[dict], dict]:
    """Imports ``name`` from the module file at ``module_file``."""
    module_name = f"user_transform_{abs(hash(module_file))}"
    spec = importlib.util.spec_from_file_location(module_name, module_file)
    if spec is None or spec.loader is None:
        raise ComponentError(f"Transform got module_file={module_file!r}; it cannot be imported. "
                             "How to fix: pass a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ComponentError(
            f"Transform got preprocessing_fn={name!r}; {module_file} defines no such function. "
            "How to fix: define it or pass the right name.")
    return fn
