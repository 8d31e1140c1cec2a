"""A failing Trainer says why in one line (issue 13, 5.5 and 5.4): the label checked against the
head before training, TensorFlow's root cause instead of "Graph execution error:", and errors in a
user module naming the file, the function, the line and how to fix.

The inputs are tiny transformed Examples written here with a transform graph's metadata (no
Transform run); the Trainer's real executor and real TensorFlow ops do the rest."""

from __future__ import annotations

import os
import re

import pytest

from components.artifacts import Examples, ExampleStatistics, Schema, TransformGraph
from components.base import ComponentError
from components.feature_spec import FeatureSpec, Label, Numeric
from components.trainer import CannedEstimatorConfig, Trainer
from tests.components.helpers import execute
from tests.components.test_trainer import _source

_TYPES = {"int": "INT", "float": "FLOAT", "string": "BYTES"}


def fake_inputs(tmp_path, labels, *, kind="int", statistics=None):
    """Transformed Examples (label ``y``, feature ``fare``) + transform metadata; ``statistics``:
    (type, min, max) or a list of strings for the raw statistics of ``y``, or None."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import statistics_pb2

    examples = Examples(uri=str(tmp_path / "examples"), properties={"split_names": ["train", "eval"]}, id=1)
    for split in ("train", "eval"):
        os.makedirs(examples.split_uri(split))
        with tf.io.TFRecordWriter(os.path.join(examples.split_uri(split), "part.gz"), "GZIP") as w:
            for i, v in enumerate(labels):
                ex = tf.train.Example()
                feature = ex.features.feature["y"]
                if kind == "string":
                    feature.bytes_list.value.append(v.encode())
                elif kind == "float":
                    feature.float_list.value.append(v)
                else:
                    feature.int64_list.value.append(v)
                ex.features.feature["fare"].float_list.value.append(float(i % 7))
                w.write(ex.SerializeToString())
    graph = TransformGraph(uri=str(tmp_path / "graph"), id=2)
    os.makedirs(os.path.join(graph.uri, "transformed_metadata"))
    with open(os.path.join(graph.uri, "transformed_metadata", "schema.pbtxt"), "w") as f:
        f.write(f'feature {{ name: "y" type: {_TYPES[kind]} presence {{ min_fraction: 1 }} '
                'shape { dim { size: 1 } } }\n'
                'feature { name: "fare" type: FLOAT presence { min_fraction: 1 } shape { dim { size: 1 } } }\n')
    schema = Schema(uri=str(tmp_path / "schema"), id=3)
    os.makedirs(schema.uri)
    with open(schema.schema_path, "w") as f:
        f.write(f'feature {{ name: "y" type: {_TYPES[kind]} }}\nfeature {{ name: "fare" type: FLOAT }}\n')
    inputs = {"examples": examples, "transform_graph": graph, "schema": schema}
    if statistics is not None:
        stats = ExampleStatistics(uri=str(tmp_path / "stats"), properties={"split_names": ["train", "eval"]}, id=4)
        proto = statistics_pb2.DatasetFeatureStatisticsList()
        dataset = proto.datasets.add(num_examples=len(labels))
        fs = dataset.features.add()
        fs.path.step.append("y")
        if isinstance(statistics, list):
            fs.type = statistics_pb2.FeatureNameStatistics.STRING
            fs.string_stats.common_stats.num_non_missing = len(labels)
            fs.string_stats.unique = len(statistics)
            for value in statistics:
                fs.string_stats.rank_histogram.buckets.add(label=value, sample_count=1)
        else:
            stat_type, low, high = statistics
            fs.type = getattr(statistics_pb2.FeatureNameStatistics, stat_type)
            fs.num_stats.common_stats.num_non_missing = len(labels)
            fs.num_stats.min, fs.num_stats.max = low, high
        for split in ("train", "eval"):
            os.makedirs(stats.split_uri(split))
            with open(stats.stats_path(split), "wb") as f:
                f.write(proto.SerializeToString())
        inputs["statistics"] = stats
    return inputs


def canned_trainer(estimator="LinearClassifier", **kwargs):
    from components.statistics_gen import StatisticsGen

    source = _source()
    spec = FeatureSpec(features=(Numeric("fare"),), label=Label("y"))
    return Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                   statistics=StatisticsGen(source.outputs["examples"]).outputs["statistics"],
                   canned=CannedEstimatorConfig(estimator, feature_spec=spec, kwargs=kwargs), train_steps=1)


def module_trainer(module, **kwargs):
    source = _source()
    return Trainer(source.outputs["examples"], source.outputs["graph"], source.outputs["schema"],
                   module_file=str(module), label_key="y", train_steps=2, eval_steps=1, **kwargs)


# --- the label against the head, before training -------------------------------------------------

@pytest.mark.parametrize("statistics", [("INT", 0, 2), None])
def test_a_label_outside_the_binary_heads_classes_is_refused_before_training(tmp_path, statistics):
    """From the raw statistics (then confirmed on the transformed split) or from that split alone."""
    inputs = fake_inputs(tmp_path, [0, 1, 2, 1, 0] * 20, statistics=statistics)
    with pytest.raises(ComponentError) as error:
        execute(canned_trainer(), tmp_path / "run", inputs)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("Trainer got label 'y' (split 'train', ")
    assert "labels must be integer class ids in [0, 2); first bad label: 2" in message
    assert "How to fix: map the label to ids 0..1 in the preprocessing_fn" in message
    # The scan stopped at the first bad value, in the first batch.
    assert "(split 'train', from the first 100 transformed examples)" in message
    assert not os.path.exists(tmp_path / "run" / "Trainer" / "model_run" / "1" / "graph.pbtxt")


def test_raw_statistics_that_the_preprocessing_fn_fixed_are_not_an_error(tmp_path):
    """Raw ids 1..3 (statistics) mapped to 0..2 by the Transform: the scan of the transformed split
    finds nothing out of range, so the 3-class head trains."""
    from components.trainer.executor import _check_label_classes
    from components.trainer.fn_args import FnArgs
    from components.trainer.label_check import head_info
    import trainer
    from trainer import feature_column as fc

    inputs = fake_inputs(tmp_path, [0, 1, 2] * 10, statistics=("INT", 1, 3))
    estimator = trainer.LinearClassifier([fc.numeric_column("fare")], n_classes=3, model_dir=str(tmp_path / "m"))
    assert head_info(estimator).n_classes == 3
    fn_args = FnArgs(train_files=(inputs["examples"].file_pattern("train"),), eval_files=(),
                     transform_graph_path=inputs["transform_graph"].uri, schema_path="", train_steps=1,
                     eval_steps=1, serving_model_dir="", model_run_dir="")
    reports = []
    ctx = type("Ctx", (), {"inputs": {"statistics": [inputs["statistics"]]}, "report": reports.append})()
    params = type("P", (), {"label_key": "y", "train_split": "train", "canned": None})()
    _check_label_classes(ctx, params, fn_args, estimator)  # no error
    assert reports == []
    # The same raw statistics with a label the Transform did not fix are an error.
    bad = fake_inputs(tmp_path / "bad", [1, 2, 3] * 10, statistics=("INT", 1, 3))
    fn_args = FnArgs(**{**fn_args.__dict__, "train_files": (bad["examples"].file_pattern("train"),),
                        "transform_graph_path": bad["transform_graph"].uri})
    with pytest.raises(ComponentError, match=r"labels must be integer class ids in \[0, 3\); first bad label: 3"):
        _check_label_classes(ctx, params, fn_args, estimator)


def test_a_string_label_without_label_vocabulary_is_refused(tmp_path):
    inputs = fake_inputs(tmp_path, ["adelie", "gentoo", "chinstrap"] * 5, kind="string",
                         statistics=["adelie", "chinstrap", "gentoo"])
    with pytest.raises(ComponentError, match=(
            r"^Trainer got string label 'y' \(split 'train', from the statistics\) with values 'adelie', "
            r"'chinstrap', 'gentoo' for the 3-class head MultiClassHead without a label_vocabulary; .* "
            r"How to fix: pass label_vocabulary=\[\.\.\.\]")):
        execute(canned_trainer(n_classes=3), tmp_path / "run", inputs)
    # With a vocabulary that lacks a class: the unknown value is named.
    with pytest.raises(ComponentError, match=r"with values 'gentoo' not in the head's label_vocabulary "
                                             r"\['adelie', 'chinstrap', 'emperor'\]"):
        execute(canned_trainer(n_classes=3, label_vocabulary=["adelie", "chinstrap", "emperor"]),
                tmp_path / "run2", inputs)


def test_a_fractional_float_label_for_a_classifier_is_refused(tmp_path):
    inputs = fake_inputs(tmp_path, [0.0, 0.25, 1.0] * 5, kind="float")
    with pytest.raises(ComponentError, match=(
            r"^Trainer got float label 'y' \(split 'train', from the first 15 transformed examples\) with the "
            r"value 0\.25 for the classifier head BinaryClassHead; a classifier takes integer class ids")):
        execute(canned_trainer(), tmp_path / "run", inputs)


def test_fewer_classes_than_the_head_is_a_warning():
    from components.trainer.label_check import HeadInfo, LabelValues, fewer_classes_warning

    head = HeadInfo("classifier", 3, None, "MultiClassHead")
    found = LabelValues("int", 30, (0, 1), unique=2, source="from all 30 transformed examples")
    assert fewer_classes_warning(label="y", split="train", head=head, found=found) == (
        "warning: label 'y' has 2 distinct values in split 'train' (from all 30 transformed examples) but the "
        "head MultiClassHead has 3 classes; the missing classes are never learned.")
    partial = LabelValues("int", 30, (0, 1), unique=None, source="from the first 30 transformed examples")
    assert fewer_classes_warning(label="y", split="train", head=head, found=partial) is None


# --- TensorFlow's root cause -----------------------------------------------------------------------

def _op_error(fn):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        tf.function(fn)()
    return error.value


def test_the_root_cause_of_a_heads_label_assertion():
    import tensorflow as tf

    from components.trainer.errors import describe, op_error_cause
    from trainer.heads.base_head import check_label_ids

    error = _op_error(lambda: check_label_ids(tf.constant([0, 1, 2, 3], tf.int64), 2, "BinaryClassHead"))
    assert op_error_cause(error.message) == ("BinaryClassHead: labels must be integer class ids in [0, 2); "
                                             "first bad label: 2 (use label_vocabulary for string labels)")
    assert describe(error).startswith("InvalidArgumentError: BinaryClassHead: labels must be")


def test_the_root_cause_of_sparse_softmax_cross_entropy():
    import tensorflow as tf

    from components.trainer.errors import op_error_cause

    error = _op_error(lambda: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant([0, 2]), logits=tf.zeros([2, 2])))
    assert "Received a label value of 2 which is outside the valid range of [0, 2)" in error.message
    assert op_error_cause(error.message).startswith("labels must be integer class ids in [0, 2); first bad label: 2")


CUSTOM_MODEL = '''
import tensorflow as tf
import trainer
from components.trainer import transformed_input_fn


def model_fn(features, labels, mode):
    w = tf.Variable(lambda: tf.zeros([1, 2]), name="w")
    logits = tf.reshape(features["fare"], [-1, 1]) * w
    if mode == trainer.ModeKeys.PREDICT:
        return trainer.EstimatorSpec(mode, predictions={"logits": logits})
    labels = tf.reshape(labels, [-1])
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return trainer.EstimatorSpec(mode, loss=loss, train_op=trainer.optimizers.SGD(0.1).minimize(
        loss, global_step=trainer.get_global_step()))


def trainer_fn(fn_args):
    read = lambda files, epochs: transformed_input_fn(files, fn_args.transform_output, label_key="y",
                                                      batch_size=8, num_epochs=epochs, shuffle=False)
    return {"estimator": trainer.Estimator(model_fn, model_dir=fn_args.model_run_dir),
            "train_spec": trainer.TrainSpec(read(fn_args.train_files, None), max_steps=fn_args.train_steps),
            "eval_spec": trainer.EvalSpec(read(fn_args.eval_files, 1), steps=1)}
'''


def test_a_failing_training_step_shows_the_root_cause_and_the_users_line(tmp_path):
    """A custom model_fn (head unknown: no check before training) whose loss op gets label 2."""
    module = tmp_path / "custom.py"
    module.write_text(CUSTOM_MODEL)
    inputs = fake_inputs(tmp_path, [0, 1, 2, 1] * 4)
    with pytest.raises(ComponentError) as error:
        execute(module_trainer(module), tmp_path / "run", inputs)
    message = str(error.value)
    assert "\n" not in message and "Graph execution error" not in message
    assert message.startswith("Trainer failed while training: InvalidArgumentError: labels must be integer class "
                              "ids in [0, 2); first bad label: 2")
    line = CUSTOM_MODEL.splitlines().index(
        "    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))") + 1
    assert f"(at {module}:{line} in model_fn)" in message
    assert "How to fix: check the values of label 'y' against the head" in message


# --- errors in the user's module ------------------------------------------------------------------

@pytest.mark.parametrize("code, expected", [
    ("import not_a_package_anywhere\n",
     r"^Trainer could not import module_file {m}: ModuleNotFoundError: No module named 'not_a_package_anywhere' "
     r"at {m}:1 in <module>\. How to fix: install 'not_a_package_anywhere' in the environment"),
    ("def trainer_fn(fn_args):\n    return 1 +\n",
     r"^Trainer could not import module_file {m}: SyntaxError: .* at {m}:2\. How to fix: correct the syntax"),
    ("def trainer_fn(fn_args, schema):\n    return fn_args.no_such_field\n",
     r"^Trainer: trainer_fn\(fn_args, schema\) in {m} raised AttributeError: 'FnArgs' object has no attribute "
     r"'no_such_field' at {m}:2 in trainer_fn\. How to fix: correct the code at the line named"),
    ("import tensorflow as tf\ndef trainer_fn(fn_args):\n    return tf.estimator.DNNClassifier\n",
     r"^Trainer: trainer_fn\(fn_args\) in {m} raised AttributeError: .*'estimator'.* at {m}:3 in trainer_fn\. "
     r"How to fix: .*TensorFlow 2\.21 has no tf\.estimator: use trainer\.\* for tf\.estimator\.\*\.$"),
    ("def trainer_fn(fn_args, schema, extra):\n    pass\n",
     r"^Trainer: trainer_fn in {m} takes \(fn_args, schema, extra\) at {m}:1; expected trainer_fn\(fn_args\) or "
     r"trainer_fn\(fn_args, schema\)\. How to fix"),
    ("def trainer_fn(fn_args):\n    return {'estimator': None, 'train_spec': None, 'eval_spec': None}\n",
     r"^Trainer got trainer_fn in {m} result train_spec=NoneType; expected a trainer\.TrainSpec\. How to fix: "
     r"return \{{'estimator': est"),
    ("def trainer_fn(fn_args):\n    return [1]\n",
     r"^Trainer got trainer_fn in {m} result list; expected a dict with keys \['estimator', 'train_spec', "
     r"'eval_spec'\]"),
    ("def preprocessing_fn(inputs):\n    return inputs\n",
     r"^Trainer got module_file {m}, which defines neither trainer_fn nor run_fn\. How to fix: define "
     r"trainer_fn\(fn_args, schema\)"),
    ("def run_fn(fn_args):\n    pass\n",
     r"^Trainer: run_fn\(fn_args\) in {m} returned without saving a SavedModel to fn_args\.serving_model_dir "
     r"\(.*Format-Serving holds nothing\)\. How to fix: end run_fn with tf\.saved_model\.save"),
    ("import tensorflow as tf\ndef run_fn(fn_args):\n    m = tf.Module()\n    m.v = tf.Variable(1.0)\n"
     "    tf.saved_model.save(m, fn_args.serving_model_dir)\n",
     r"^Trainer: run_fn\(fn_args\) in {m} saved a SavedModel at .*Format-Serving without a 'serving_default' "
     r"signature \(it has \[\]\)\. How to fix: pass signatures="),
])
def test_errors_in_a_user_module_are_one_line_naming_file_function_and_fix(tmp_path, code, expected):
    module = tmp_path / "user_module.py"
    module.write_text(code)
    inputs = fake_inputs(tmp_path, [0, 1] * 4)
    with pytest.raises(ComponentError) as error:
        execute(module_trainer(module), tmp_path / "run", inputs)
    message = str(error.value)
    assert "\n" not in message
    assert re.search(expected.format(m=re.escape(str(module))), message), message


def test_run_fn_by_name(tmp_path):
    module = tmp_path / "two.py"
    module.write_text("def trainer_fn(fn_args):\n    raise AssertionError('not this one')\n"
                      "def fit(fn_args):\n    raise RuntimeError('training went wrong')\n")
    inputs = fake_inputs(tmp_path, [0, 1] * 4)
    with pytest.raises(ComponentError, match=(
            rf"^Trainer: fit\(fn_args\) in {re.escape(str(module))} raised RuntimeError: training went wrong "
            rf"at {re.escape(str(module))}:4 in fit\.")):
        execute(module_trainer(module, run_fn="fit"), tmp_path / "run", inputs)
    with pytest.raises(ComponentError, match=r"Trainer got run_fn='missing'; .* defines no such function"):
        execute(module_trainer(module, run_fn="missing"), tmp_path / "run2", inputs)
