"""What `python -m pipeline run` prints after a push (or, for a cached Pusher, about the served version)."""

import os

import pytest

from components.artifacts import PushedModel
from pipeline.serving_hints import serving_hints


def _outputs(destination):
    pushed = PushedModel(uri="/unused", properties={"pushed": True, "pushed_destination": destination,
                                                    "version": 7, "model_id": 3})
    return {"Pusher": {"pushed_model": pushed}}


def test_a_cached_pusher_whose_version_is_gone_gives_no_hints(tmp_path):
    gone = str(tmp_path / "serving" / "taxi" / "7")
    assert serving_hints(_outputs(gone), root=str(tmp_path), executed=["Trainer"]) == []
    with pytest.raises(OSError):  # the CLI turns this into a warning line
        serving_hints(_outputs(gone), root=str(tmp_path), executed=["Pusher"])


def test_hints_for_a_pusher_that_ran(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    version = tmp_path / "serving" / "taxi" / "7"
    version.mkdir(parents=True)
    proto = saved_model_pb2.SavedModel()
    proto.meta_graphs.add().signature_def["serving_default"].method_name = "tensorflow/serving/regress"
    (version / "saved_model.pb").write_bytes(proto.SerializeToString())
    [hints] = serving_hints(_outputs(str(version)), root=str(tmp_path), executed=["Pusher"])
    assert (hints.model_name, hints.version, hints.method) == ("taxi", 7, "regress")
    lines = "\n".join(hints.lines())
    assert lines.startswith("Pushed taxi version 7")
    assert f"--model_base_path={tmp_path / 'serving' / 'taxi'}" in lines
    assert "serving.client regress --server 127.0.0.1:8500 --model taxi" in lines
    [cached] = serving_hints(_outputs(str(version)), root=str(tmp_path), executed=["Trainer"])
    assert "\n".join(cached.lines()).startswith("Nothing new to push: taxi version 7")


def test_printed_interpreter_is_the_one_running(tmp_path, monkeypatch):
    import sys

    from pipeline.serving_hints import this_python

    venv_python = tmp_path / "proj" / ".venv" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(venv_python))
    assert this_python(str(tmp_path / "proj")) == ".venv/bin/python"
    assert this_python(str(tmp_path / "elsewhere")) == str(venv_python)
    monkeypatch.setattr(sys, "executable", "/usr/local/bin/python3.11")
    assert this_python(str(tmp_path)) == "/usr/local/bin/python3.11"


def _pushed_version(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    version = tmp_path / "serving" / "penguins" / "7"
    version.mkdir(parents=True)
    proto = saved_model_pb2.SavedModel()
    proto.meta_graphs.add().signature_def["serving_default"].method_name = "tensorflow/serving/classify"
    (version / "saved_model.pb").write_bytes(proto.SerializeToString())
    return str(version)


def _raw_examples(tmp_path):
    """ExampleGen-style Examples: the label ``species`` derived from the raw ``species_code``."""
    import tensorflow as tf

    from components.artifacts import Examples

    examples = Examples(uri=str(tmp_path / "examples"), properties={"split_names": ["train", "eval"]}, id=1)
    os.makedirs(examples.split_uri("eval"))
    with tf.io.TFRecordWriter(os.path.join(examples.split_uri("eval"), "part.gz"), "GZIP") as writer:
        for i in range(5):
            ex = tf.train.Example()
            ex.features.feature["x1"].float_list.value.append(0.5 + i)
            ex.features.feature["color"].bytes_list.value.append(b"red")
            ex.features.feature["weight_g"].int64_list.value.append(4000)
            ex.features.feature["species_code"].int64_list.value.append(2)
            ex.features.feature["species"].int64_list.value.append(1)
            writer.write(ex.SerializeToString())
    return examples


@pytest.mark.parametrize("raw_features, expected", [
    (["color", "x1"], ["color", "x1"]),  # what the served model reads: no label, no label source
    (None, ["color", "species_code", "weight_g", "x1"]),  # an older Model: only the label is dropped
])
def test_sample_requests_hold_only_the_features_the_served_model_reads(tmp_path, raw_features, expected):
    import tensorflow as tf

    from components.artifacts import Model

    properties = {"label_key": "species"}
    if raw_features is not None:
        properties["serving_raw_features"] = raw_features
    model = Model(uri=str(tmp_path / "model"), properties=properties, id=3)
    outputs = {"ExampleGen": {"examples": _raw_examples(tmp_path)}, "Trainer": {"model": model},
               **{k: v for k, v in _outputs(_pushed_version(tmp_path)).items()}}
    [hints] = serving_hints(outputs, root=str(tmp_path), executed=["Pusher"])
    assert hints.method == "classify"
    records = list(tf.data.TFRecordDataset(hints.requests_file))
    assert len(records) == 3
    assert sorted(tf.train.Example.FromString(records[0].numpy()).features.feature) == expected
    assert sorted(hints.first_example) == expected


def test_a_url_destination_is_served_by_tf_serving_not_the_local_only_server():
    from pipeline.serving_hints import ServingHints

    lines = "\n".join(ServingHints("taxi", "gs://bucket/serving/taxi", 7, "regress").lines(python="py"))
    assert "tensorflow_model_server --model_name=taxi --model_base_path=gs://bucket/serving/taxi" in lines
    assert "py -m serving --model_name" not in lines and "reads local directories only" in lines
    assert "py -m serving.client regress --server 127.0.0.1:8500" in lines
