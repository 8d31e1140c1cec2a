"""required_raw_spec on a very wide raw schema: linear in the columns, exactly the used inputs.

It used to trace the transform graph once per raw column with every remaining column as an
input (quadratic): 2,000 unused columns kept a Trainer busy for over an hour.
"""

import os
import time

import pytest

from components.trainer.serving_export import raw_inputs_by_output, required_raw_spec

NUM_UNUSED = 2000


def _preprocessing_fn(inputs, scale=None):
    import tensorflow as tf
    import tensorflow_transform as tft

    return {
        "fare": (scale or tft.scale_to_z_score)(inputs["fare"]),
        "company_len": tf.cast(tf.strings.length(inputs["company"]), tf.int64),
        "num_tags": tf.reduce_sum(tf.cast(tf.sparse.to_dense(inputs["tags"], default_value="") != "", tf.int64),
                                  axis=1),
        "big_tipper": tf.cast(inputs["tips"] > 0.2 * inputs["fare"], tf.int64),
    }


def _raw_spec(num_unused):
    import tensorflow as tf

    spec = {f"unused_{i:04d}": tf.io.FixedLenFeature([], tf.float32) for i in range(num_unused)}
    spec.update(fare=tf.io.FixedLenFeature([], tf.float32), tips=tf.io.FixedLenFeature([], tf.float32),
                company=tf.io.FixedLenFeature([], tf.string), tags=tf.io.VarLenFeature(tf.string))
    return spec


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A transform graph over 2,004 raw columns, of which fare, company and tags feed the model.

    Saved as tf.Transform lays it out (``<dir>/transform_fn``, a tf.function over a dict of raw
    tensors) without the Beam analysis, which takes ~45 s for 2,000 columns; the analyzer's
    result is a captured constant, as in a real export. `small_tft` checks a real one.
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    spec = _raw_spec(NUM_UNUSED)
    signature = {k: tf.TensorSpec([None], v.dtype) if isinstance(v, tf.io.FixedLenFeature)
                 else tf.SparseTensorSpec([None, None], v.dtype) for k, v in spec.items()}
    mean, std = tf.constant(1.5), tf.constant(1.1)

    def transform_fn(inputs):
        return _preprocessing_fn(inputs, scale=lambda x: (x - mean) / std)

    module = tf.Module()
    module.transform_fn = tf.function(transform_fn, input_signature=[signature])
    root = tmp_path_factory.mktemp("wide")
    tf.saved_model.save(module, os.path.join(str(root), "transform_fn"))
    return tft.TFTransformOutput(str(root)), spec


@pytest.fixture(scope="module")
def small_tft(tmp_path_factory):
    """A real tf.Transform export (Beam analysis) over the same features and 10 unused columns."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata

    tmp = tmp_path_factory.mktemp("small_tft")
    spec = _raw_spec(10)
    unused = {k: 1.0 for k in spec if k.startswith("unused_")}
    rows = [{**unused, "fare": float(i), "tips": float(i % 3), "company": "abc", "tags": ["x"] * (i % 2)}
            for i in range(4)]
    with tft_beam.Context(temp_dir=str(tmp / "tft")), beam.Pipeline() as p:
        transform_fn = ((p | beam.Create(rows), dataset_metadata.DatasetMetadata.from_feature_spec(spec))
                        | tft_beam.AnalyzeDataset(_preprocessing_fn))
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "out"))
    return tft.TFTransformOutput(str(tmp / "out")), spec


def test_only_the_used_raw_columns_are_required_and_fast(wide):
    output, spec = wide
    start = time.monotonic()
    required = required_raw_spec(output, spec, ["big_tipper"], ["fare", "company_len", "num_tags"])
    elapsed = time.monotonic() - start
    assert sorted(required) == ["company", "fare", "tags"]
    assert required["tags"] == spec["tags"]
    # One SavedModel load and one walk over ~2,000 placeholders take 2-5 s here on a shared
    # 2-core machine; the quadratic per-column tracing took over an hour. 60 s leaves a >10x
    # margin for slow CI machines while still catching any per-column trace (>= 0.05 s each).
    assert elapsed < 60, f"required_raw_spec took {elapsed:.1f} s for {len(spec)} raw columns"


@pytest.mark.parametrize("graph", ["wide", "small_tft"])
def test_raw_inputs_by_output(graph, request):
    output, spec = request.getfixturevalue(graph)
    assert raw_inputs_by_output(output) == {"fare": {"fare"}, "company_len": {"company"}, "num_tags": {"tags"},
                                            "big_tipper": {"tips", "fare"}}


def test_tft_computes_the_model_inputs_from_the_required_columns_alone(small_tft):
    """The transform layer, fed only what required_raw_spec asks for, outputs every model input."""
    import tensorflow as tf

    output, spec = small_tft
    required = required_raw_spec(output, spec, ["big_tipper"], ["fare", "company_len", "num_tags"])
    raw = {"fare": tf.constant([1.0, 2.0]), "company": tf.constant(["ab", "abc"]),
           "tags": tf.sparse.from_dense(tf.constant([["x", ""], ["x", "y"]]))}
    assert set(raw) == set(required)
    transformed = output.transform_features_layer()(raw)
    assert transformed["num_tags"].numpy().tolist() == [1, 2]
    assert transformed["company_len"].numpy().tolist() == [2, 3]
    assert "big_tipper" not in transformed  # needs tips, which the request does not carry


def test_model_input_derived_from_the_label_is_an_error(wide):
    output, spec = wide
    with pytest.raises(ValueError, match=r"Trainer got model inputs computed from labels \{'fare': \['fare'\]\}"):
        required_raw_spec(output, spec, ["fare"], ["fare"])
    with pytest.raises(ValueError, match=r"Trainer got model inputs \['nope'\] that the transform graph does "
                                         r"not output"):
        required_raw_spec(output, spec, [], ["nope"])
    with pytest.raises(ValueError, match=r"reads raw features \['fare'\] missing from the raw Schema"):
        required_raw_spec(output, {k: v for k, v in spec.items() if k != "fare"}, [], ["fare"])
