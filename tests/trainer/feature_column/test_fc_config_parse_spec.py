"""to_config / from_config round trips and make_parse_example_spec."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from trainer import feature_column as fc


def all_columns(vocab_path):
    num = fc.numeric_column("age", shape=(2,), default_value=1.0, dtype=tf.float64)
    ident = fc.categorical_column_with_identity("day", 7, default_value=0)
    vocab = fc.categorical_column_with_vocabulary_list("city", ["a", "b"], num_oov_buckets=2)
    vocab_int = fc.categorical_column_with_vocabulary_list("code", [3, 1, 5, 8], default_value=0)
    vfile = fc.categorical_column_with_vocabulary_file("tok", vocab_path, vocabulary_size=2,
                                                       default_value=1)
    hashed = fc.categorical_column_with_hash_bucket("word", 10, dtype=tf.int32)
    bucket = fc.bucketized_column(fc.numeric_column("price"), [1.0, 2.5])
    cross = fc.crossed_column([fc.crossed_column(["x", vocab], 5), bucket], 20, hash_key=3)
    weighted = fc.weighted_categorical_column(ident, "day_weight", dtype=tf.float64)
    ind = fc.indicator_column(weighted)
    emb = fc.embedding_column(cross, 3, combiner="sqrtn", max_norm=2.0, trainable=False)
    shared = fc.shared_embeddings([vocab, vocab_int], 4, combiner="sum")
    return [num, ident, vocab, vocab_int, vfile, hashed, bucket, cross, weighted, ind, emb,
            *shared]


@pytest.fixture
def vocab_path(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("x\ny\nz\n")
    return str(path)


def test_every_column_round_trips_through_json(vocab_path):
    columns = all_columns(vocab_path)
    assert len({type(c) for c in columns}) == 11  # every column class
    for column in columns:
        text = json.dumps(fc.serialize(column))
        rebuilt = fc.deserialize(json.loads(text))
        assert rebuilt == column, column.name
        assert type(column).from_config(json.loads(json.dumps(column.to_config()))) == column
    assert fc.deserialize_columns(json.loads(json.dumps(fc.serialize_columns(columns)))) == columns


def test_config_fields_are_plain_and_nested():
    cross = fc.crossed_column(["a", fc.categorical_column_with_identity("b", 3)], 9)
    assert cross.to_config() == {
        "keys": ["a", {"class_name": "IdentityCategoricalColumn",
                       "config": {"key": "b", "num_buckets": 3, "default_value": None}}],
        "hash_bucket_size": 9, "hash_key": None}
    assert fc.numeric_column("n").to_config() == {
        "key": "n", "shape": [1], "default_value": None, "dtype": "float32"}


def test_functions_are_left_out_of_config():
    fn = lambda x: x * 2.0  # noqa: E731
    column = fc.numeric_column("n", normalizer_fn=fn)
    assert "normalizer_fn" not in column.to_config()
    rebuilt = fc.NumericColumn.from_config(column.to_config())
    assert rebuilt.normalizer_fn is None
    assert dataclasses.replace(rebuilt, normalizer_fn=fn) == column
    emb = fc.embedding_column(fc.categorical_column_with_identity("i", 3), 2,
                              initializer=tf.zeros)
    assert "initializer" not in emb.to_config()


def test_config_errors():
    with pytest.raises(ValueError, match=r"NumericColumn.from_config got unknown fields "
                                         r"\['bogus'\]"):
        fc.NumericColumn.from_config({"key": "n", "bogus": 1})
    with pytest.raises(TypeError, match=r"NumericColumn.from_config got 3; expected a dict"):
        fc.NumericColumn.from_config(3)
    with pytest.raises(ValueError, match=r"deserialize got class_name='Nope'; expected one of"):
        fc.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match=r"deserialize got \{'key': 'n'\}; expected a dict with "
                                        r"'class_name' and 'config'"):
        fc.deserialize({"key": "n"})
    with pytest.raises(TypeError, match=r"serialize got 'n'; expected a column"):
        fc.serialize("n")
    config = fc.serialize(fc.numeric_column("n"))
    assert fc.FeatureColumn.from_config(config) == fc.numeric_column("n")


def test_make_parse_example_spec_merges_columns(vocab_path):
    spec = fc.make_parse_example_spec(all_columns(vocab_path))
    assert spec == {
        "age": tf.io.FixedLenFeature((2,), tf.float64, (1.0, 1.0)),
        "day": tf.io.VarLenFeature(tf.int64),
        "day_weight": tf.io.VarLenFeature(tf.float64),
        "city": tf.io.VarLenFeature(tf.string),
        "code": tf.io.VarLenFeature(tf.int64),
        "tok": tf.io.VarLenFeature(tf.string),
        "word": tf.io.VarLenFeature(tf.int64),
        "price": tf.io.FixedLenFeature((1,), tf.float32, None),
        "x": tf.io.VarLenFeature(tf.string),
    }


def test_parse_spec_matches_tf_feature_column_oracle():
    ours = fc.make_parse_example_spec([
        fc.numeric_column("a", shape=(2,), default_value=0.0),
        fc.embedding_column(fc.categorical_column_with_vocabulary_list("b", ["x"]), 2),
        fc.crossed_column(["c", fc.categorical_column_with_identity("d", 3)], 4),
        fc.weighted_categorical_column(fc.categorical_column_with_identity("e", 3), "w"),
    ])
    F = tf.feature_column
    theirs = F.make_parse_example_spec([
        F.numeric_column("a", shape=(2,), default_value=0.0),
        F.embedding_column(F.categorical_column_with_vocabulary_list("b", ["x"]), 2),
        F.crossed_column(["c", F.categorical_column_with_identity("d", 3)], 4),
        F.weighted_categorical_column(F.categorical_column_with_identity("e", 3), "w"),
    ])
    assert ours == theirs


def test_parsed_examples_feed_the_layers():
    columns = [fc.numeric_column("age"),
               fc.indicator_column(fc.categorical_column_with_vocabulary_list("c", ["a", "b"]))]
    example = tf.train.Example(features=tf.train.Features(feature={
        "age": tf.train.Feature(float_list=tf.train.FloatList(value=[7.0])),
        "c": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"b", b"a", b"b"])),
    }))
    empty = tf.train.Example(features=tf.train.Features(feature={
        "age": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0]))}))
    parsed = tf.io.parse_example([example.SerializeToString(), empty.SerializeToString()],
                                 fc.make_parse_example_spec(columns))
    np.testing.assert_array_equal(fc.DenseFeatures(columns)(parsed).numpy(),
                                  [[7.0, 1.0, 2.0], [1.0, 0.0, 0.0]])


def test_make_parse_example_spec_errors():
    with pytest.raises(ValueError, match=r"make_parse_example_spec got two specs for key 'a'"):
        fc.make_parse_example_spec([fc.numeric_column("a"),
                                    fc.categorical_column_with_identity("a", 3)])
    with pytest.raises(TypeError, match=r"make_parse_example_spec got 'a'; expected feature "
                                        r"columns"):
        fc.make_parse_example_spec(["a"])
    weighted = fc.weighted_categorical_column(fc.categorical_column_with_identity("a", 3), "a")
    with pytest.raises(ValueError, match=r"weighted_categorical_column got "
                                         r"weight_feature_key='a', which is also the id feature"):
        _ = weighted.parse_example_spec
