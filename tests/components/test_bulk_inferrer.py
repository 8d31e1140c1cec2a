"""BulkInferrer: a small taxi model trained through the real pipeline (ExampleGen -> StatisticsGen ->
SchemaGen -> Transform -> Trainer, LocalRunner, Beam DirectRunner), new unlabeled rows from a second
ExampleGen scored in Beam, and every PredictionLog replayed to the project's model server (in-process,
gRPC on 127.0.0.1): the server answers each logged request with the logged response.

The Evaluator is stood in for by `Verdict` (a blessing with a reason, as the Evaluator writes it):
TFMA would add ~20 s and nothing that BulkInferrer reads.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import os
import re
import shutil

import numpy as np
import pytest

from components.artifacts import Examples, InferenceResult, Model, ModelBlessing
from components.base import Component, ComponentError, DataError, InputSpec
from components.bulk_inferrer import BulkInferrer, BulkInferrerParameters
from components.example_gen import ExampleGen
from components.example_gen.component import SplitConfig
from components.feature_spec import FeatureSpec, Label, Numeric, Vocabulary
from components.schema_gen import SchemaGen
from components.statistics_gen import StatisticsGen
from components.trainer import CannedEstimatorConfig, Trainer, serving_model_path
from components.transform import Transform
from pipeline.progress import ProgressListener
from tests.components.helpers import execute
from tests.components.test_trainer import REPO, taxi_slice

pytestmark = pytest.mark.timeout(300)  # per test, fixtures included: a hung server or Beam run fails, not blocks

LABEL = Label("big_tipper", expression="tips > 0.2 * fare")
SPEC = FeatureSpec(features=(Numeric("fare"), Numeric("trip_miles"),
                             Vocabulary("payment_type", top_k=10, num_oov_buckets=1)), label=LABEL)
NEW_ROWS = 80
SPLIT = "unlabeled"
MODEL_NAME = "taxi"
RPC_TIMEOUT = 30.0
# The server and BulkInferrer run the same SavedModel signature on the same serialized example, but
# in batches of different sizes (1 here, 64 or 32 in BulkInferrer), and TensorFlow's CPU kernels
# (Eigen's blocked, vectorized matmul) may then sum in another order, which moves a float32 result
# by a few ULPs (~1e-7 relative). rtol 1e-5 allows ~100 ULPs;
# any real skew (other weights, another transform, a feature parsed differently) moves these scores
# by more than 1e-3. atol 1e-7 covers scores near 0. Measured here: at most 6e-8 apart (one float32
# ULP near 0.5), so exact equality would be wrong and a tolerance 100x tighter than any skew is right.
RTOL, ATOL = 1e-5, 1e-7


@dataclasses.dataclass(frozen=True)
class VerdictParams:
    blessed: bool
    reason: str


class Verdict(Component):
    """Stands in for the Evaluator: a ModelBlessing with ``blessed`` and ``reason``, and its marker file."""

    INPUTS = {"model": InputSpec(Model)}
    OUTPUTS = {"blessing": ModelBlessing}
    PARAMETERS = VerdictParams

    def __init__(self, model, *, blessed: bool, reason: str, id: str):
        super().__init__(inputs={"model": model}, parameters=VerdictParams(blessed, reason), id=id)

    def executor(self):
        def run(ctx):
            blessing, params = ctx.outputs["blessing"], ctx.parameters
            blessing.properties.update(blessed=params.blessed, reason=params.reason,
                                       verdict="BLESSED" if params.blessed else "NOT_BLESSED")
            with open(os.path.join(blessing.uri, blessing.properties["verdict"]), "w") as f:
                f.write(params.reason + "\n")
        return run


def new_rows(directory, rows=NEW_ROWS, skip=5000):
    """``rows`` later taxi rows without ``tips`` (unlabeled), each with a ``trip_id`` key 1..rows."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(REPO, "data", "taxi", "data.csv"), encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = ["trip_id", *(c for c in reader.fieldnames if c != "tips")]
        kept = []
        for i, row in enumerate(reader):
            if i >= skip and all(row[c] for c in ("fare", "trip_miles", "payment_type")):
                kept.append({"trip_id": str(len(kept) + 1), **{c: row[c] for c in columns[1:]}})
            if len(kept) == rows:
                break
    with open(os.path.join(directory, "new.csv"), "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(kept)
    return str(directory)


class Messages(ProgressListener):
    """Keeps what executors report."""

    def __init__(self):
        self.lines = []

    def on_message(self, component_id, message):
        self.lines.append((component_id, message))


def build(root, train_data, new_data, *, inferrer_kwargs=None):
    """The pipeline: train on ``train_data``, score ``new_data`` with the blessed and an unblessed verdict."""
    from pipeline import Pipeline

    gen = ExampleGen(train_data, file_pattern="data.csv", column_types=SPEC.column_types(),
                     derived_columns={LABEL.name: LABEL.expression}, label=LABEL.name)
    new = ExampleGen(new_data, file_pattern="new.csv", column_types={**SPEC.column_types(), "trip_id": "int"},
                     split=SplitConfig(names=(SPLIT,), ratios=(1,)), id="NewDataGen")
    stats = StatisticsGen(gen.outputs["examples"])
    schema = SchemaGen(stats.outputs["statistics"])
    transform = Transform(gen.outputs["examples"], schema.outputs["schema"], feature_spec=SPEC)
    trainer = Trainer(transform.outputs["transformed_examples"], transform.outputs["transform_graph"],
                      schema.outputs["schema"], train_steps=20,
                      canned=CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=SPEC, batch_size=32,
                                                   kwargs={"dnn_hidden_units": [8]}, random_seed=3))
    blessed = Verdict(trainer.outputs["model"], blessed=True, reason="every threshold passed", id="Evaluator")
    rejected = Verdict(trainer.outputs["model"], blessed=False, reason="auc on overall = 0.61, lower_bound 0.9",
                       id="StrictEvaluator")
    inferrer = BulkInferrer(new.outputs["examples"], trainer.outputs["model"], model_blessing=blessed.outputs["blessing"],
                            **(inferrer_kwargs or {"key_columns": ["trip_id", "company"],
                                                   "output_formats": ["csv", "parquet"], "batch_size": 64}))
    unblessed = BulkInferrer(new.outputs["examples"], trainer.outputs["model"],
                             model_blessing=rejected.outputs["blessing"], id="UnblessedInferrer")
    nodes = [gen, new, stats, schema, transform, trainer, blessed, rejected, inferrer, unblessed]
    return Pipeline("bulk", str(root), nodes), {c.id: c for c in nodes}


@pytest.fixture(scope="module")
def taxi(tmp_path_factory):
    """The pipeline run: (result, components by id, its arguments, the messages executors reported)."""
    from pipeline import LocalRunner

    base = tmp_path_factory.mktemp("bulk")
    args = (base / "root", taxi_slice(base / "train", rows=300), new_rows(base / "new"))
    pipeline, nodes = build(*args)
    messages = Messages()
    result = LocalRunner(messages).run(pipeline)
    return result, nodes, args, messages


@pytest.fixture(scope="module")
def stub(taxi, tmp_path_factory):
    """A PredictionService stub of the project's ModelServer serving the trained model as version 1;
    the server is stopped when the module's tests end, passed or failed."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from serving.flags import ServerOptions
    from serving.server import ModelServer

    model = taxi[0].outputs["Trainer"]["model"]
    base = tmp_path_factory.mktemp("served") / MODEL_NAME
    shutil.copytree(serving_model_path(model), base / "1")
    server = ModelServer(ServerOptions(port=0, model_name=MODEL_NAME, model_base_path=str(base),
                                       file_system_poll_wait_seconds=0))
    try:
        server.start()
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
            yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    finally:
        server.stop(grace=0)


def read_logs(result: InferenceResult, split: str):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    files = sorted(glob.glob(result.prediction_logs_pattern(split)))
    assert files, f"no prediction logs in {result.split_uri(split)}"
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def logged_example(request):
    """The tf.Example a Classify/Regress request carries, as name -> first value."""
    example = request.input.example_list.examples[0]
    return {k: getattr(v, v.WhichOneof("kind")).value[0] for k, v in example.features.feature.items()}


def test_every_classify_log_is_what_the_server_answers_for_its_request(taxi, stub):
    """Each ClassifyLog's request, sent to the served model, gets the logged classes and scores back."""
    from tensorflow_serving.apis import classification_pb2

    result = taxi[0]
    out = result.outputs["BulkInferrer"]["inference_result"]
    props = out.properties
    assert props["inferred"] is True and props["method"] == "classify", props
    assert props["split_names"] == [SPLIT] and props["row_counts"] == {SPLIT: NEW_ROWS}
    assert props["reason"] == f"model_blessing {result.outputs['Evaluator']['blessing'].id} is blessed"
    logs = read_logs(out, SPLIT)
    assert len(logs) == NEW_ROWS
    assert sorted(logged_example(log.classify_log.request)["trip_id"] for log in logs) == list(range(1, NEW_ROWS + 1))
    worst = 0.0
    for log in logs:
        assert log.WhichOneof("log_type") == "classify_log"
        request = classification_pb2.ClassificationRequest()
        request.CopyFrom(log.classify_log.request)
        request.model_spec.name = MODEL_NAME
        assert request.model_spec.signature_name == "serving_default"
        served = stub.Classify(request, timeout=RPC_TIMEOUT).result.classifications
        logged = log.classify_log.response.result.classifications
        assert len(served) == len(logged) == 1
        assert [c.label for c in served[0].classes] == [c.label for c in logged[0].classes] == ["0", "1"]
        got, want = [c.score for c in logged[0].classes], [c.score for c in served[0].classes]
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        worst = max(worst, float(np.max(np.abs(np.subtract(got, want)))))
    print(f"largest classify score difference, BulkInferrer vs server: {worst:g}")

    # The CSV and the Parquet file hold the same predictions, joined to their rows by trip_id.
    by_trip = {logged_example(log.classify_log.request)["trip_id"]: log for log in logs}
    assert props["columns"] == ["trip_id", "company", "score_0", "score_1", "predicted_class"]
    with open(out.table_path(SPLIT, "csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    import pyarrow.parquet as pq

    table = pq.read_table(out.table_path(SPLIT, "parquet")).to_pylist()
    assert len(rows) == len(table) == NEW_ROWS
    for row in rows:
        log = by_trip[int(row["trip_id"])]
        scores = [np.float32(c.score) for c in log.classify_log.response.result.classifications[0].classes]
        assert [np.float32(row["score_0"]), np.float32(row["score_1"])] == scores  # float32 text round-trips
        assert row["predicted_class"] == ("1" if scores[1] > scores[0] else "0")
        assert row["company"] == logged_example(log.classify_log.request).get("company", b"").decode()
    for row in table:
        log = by_trip[row["trip_id"]]
        assert [row["score_0"], row["score_1"]] == [c.score for c in log.classify_log.response.result.classifications[0].classes]


def test_predict_logs_match_the_servers_predict_answers(taxi, stub, tmp_path):
    """The `predict` signature gives PredictLogs; each replayed request gets the same outputs."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    result, nodes = taxi[0], taxi[1]
    inferrer = BulkInferrer(nodes["NewDataGen"].outputs["examples"], nodes["Trainer"].outputs["model"],
                            signature_name="predict", key_columns=["trip_id"], output_formats=["parquet"],
                            batch_size=32)
    out = execute(inferrer, tmp_path, {"examples": result.outputs["NewDataGen"]["examples"],
                                       "model": result.outputs["Trainer"]["model"]})["inference_result"]
    assert out.properties["method"] == "predict"
    assert out.properties["reason"] == "no model_blessing given: the model was used as exported"
    logs = read_logs(out, SPLIT)
    assert len(logs) == NEW_ROWS
    logistic = {}
    for log in logs:
        request = predict_pb2.PredictRequest()
        request.CopyFrom(log.predict_log.request)
        request.model_spec.name = MODEL_NAME
        assert list(request.inputs) == ["examples"] and request.inputs["examples"].tensor_shape.dim[0].size == 1
        served = stub.Predict(request, timeout=RPC_TIMEOUT).outputs
        logged = log.predict_log.response.outputs
        assert sorted(served) == sorted(logged)
        assert "logistic" in logged and "probabilities" in logged
        for key in logged:
            want, got = tf.make_ndarray(served[key]), tf.make_ndarray(logged[key])
            assert got.shape == want.shape and got.dtype == want.dtype, key
            if got.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=key)
            else:
                np.testing.assert_array_equal(got, want, err_msg=key)
        example = tf.train.Example.FromString(request.inputs["examples"].string_val[0])
        logistic[example.features.feature["trip_id"].int64_list.value[0]] = tf.make_ndarray(logged["logistic"])[0, 0]
    import pyarrow.parquet as pq

    table = pq.read_table(out.table_path(SPLIT, "parquet"))
    assert "logistic" in table.column_names and "probabilities_1" in table.column_names
    assert {r["trip_id"]: r["logistic"] for r in table.to_pylist()} == logistic


def test_an_unblessed_model_scores_nothing_and_says_why(taxi):
    result, _, _, messages = taxi
    assert result.states["UnblessedInferrer"] == "COMPLETE"  # not a failure, as in TFX
    out = result.outputs["UnblessedInferrer"]["inference_result"]
    blessing = result.outputs["StrictEvaluator"]["blessing"]
    reason = f"model_blessing {blessing.id} is not blessed: auc on overall = 0.61, lower_bound 0.9"
    assert out.properties["inferred"] is False and out.properties["reason"] == reason
    assert out.properties["split_names"] == [] and out.properties["row_counts"] == {}
    assert os.listdir(out.uri) == []
    assert ("UnblessedInferrer", f"nothing scored: {reason}") in messages.lines


def test_a_rerun_comes_from_the_cache(taxi):
    from pipeline import LocalRunner

    result, _, args, _ = taxi
    again = LocalRunner().run(build(*args)[0])
    assert again.states["BulkInferrer"] == again.states["UnblessedInferrer"] == "CACHED"
    assert (again.outputs["BulkInferrer"]["inference_result"].uri
            == result.outputs["BulkInferrer"]["inference_result"].uri)


def test_a_key_column_not_in_the_data_fails_in_one_line_naming_it(taxi):
    """Through the runner: the failure is one line naming the column, the split and the artifact."""
    from pipeline import LocalRunner, PipelineRunError

    result, _, args, _ = taxi
    pipeline, _ = build(*args, inferrer_kwargs={"key_columns": ["trip_id", "trip_uuid"]})
    with pytest.raises(PipelineRunError) as failure:
        LocalRunner().run(pipeline)
    message = str(failure.value)
    examples = result.outputs["NewDataGen"]["examples"]
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("BulkInferrer failed: ")
    assert f"split '{SPLIT}' of Examples {examples.id} ({examples.uri}) has no column 'trip_uuid'" in message
    assert "'trip_id'" in message and "How to fix: pass key_columns= names from that list." in message


def _inputs(taxi):
    result = taxi[0]
    return {"examples": result.outputs["NewDataGen"]["examples"], "model": result.outputs["Trainer"]["model"]}


def _inferrer(taxi, **kwargs):
    nodes = taxi[1]
    return BulkInferrer(nodes["NewDataGen"].outputs["examples"], nodes["Trainer"].outputs["model"], **kwargs)


def test_a_split_the_examples_do_not_have_is_an_error(taxi, tmp_path):
    with pytest.raises(ComponentError, match=r"BulkInferrer got splits=\['eval'\]; Examples \d+ \(.*\) has no split "
                                             r"'eval' \(it has \['unlabeled'\]\)\. How to fix: pass splits="):
        execute(_inferrer(taxi, splits=["eval"]), tmp_path, _inputs(taxi))


def test_a_signature_the_model_lacks_is_an_error_listing_the_usable_ones(taxi, tmp_path):
    with pytest.raises(ComponentError, match=r"signature_name='classify'; Model \d+ \(.*\) has no such signature "
                                             r"\(it has \['classification', 'predict', 'serving_default'\]\)\. How "
                                             r"to fix: pass signature_name= one of \['classification', 'predict', "
                                             r"'serving_default'\]"):
        execute(_inferrer(taxi, signature_name="classify"), tmp_path, _inputs(taxi))


def test_a_signature_that_takes_no_examples_is_an_error(tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(2.0)
    scale = tf.function(lambda x: {"y": module.w * x}).get_concrete_function(tf.TensorSpec([None], tf.float32, name="x"))
    tf.saved_model.save(module, str(tmp_path / "m" / "Format-Serving" / "1"), signatures={"serving_default": scale})
    model = Model(uri=str(tmp_path / "m"), properties={"serving_model": "Format-Serving/1"}, id=7)
    examples = _examples_with(tmp_path, [{"fare": 1.0}])
    inferrer = BulkInferrer(_SOURCE.outputs["examples"], _SOURCE.outputs["model"])
    with pytest.raises(ComponentError, match=r"signature 'serving_default' of Model 7 \(.*\) cannot be fed "
                                             r"tf.Examples: it takes inputs \['x'\], not one tensor of serialized "
                                             r"tf.Examples .* How to fix: export a signature that takes one "
                                             r"tensor of serialized tf.Examples"):
        execute(inferrer, tmp_path / "run", {"examples": examples, "model": model})


def test_an_example_the_model_cannot_parse_is_named_with_its_file_and_keys(taxi, tmp_path):
    """fare as text in the 11th example: the probe (8 examples) passes it, the Beam DoFn's batch fails, and
    the DataError raised in the DoFn reaches the caller alone, naming the file, split, keys and feature."""
    good = {"fare": 3.5, "trip_miles": 1.0, "payment_type": "Cash"}
    rows = [{"trip_id": i, **good} for i in range(1, 13)]
    rows[10]["fare"] = "3.5"
    examples = _examples_with(tmp_path, rows)
    with pytest.raises(DataError) as failure:
        execute(_inferrer(taxi, key_columns=["trip_id"], batch_size=4), tmp_path / "run",
                {"examples": examples, "model": taxi[0].outputs["Trainer"]["model"]})
    message = str(failure.value)
    assert message.startswith(os.path.join(examples.split_uri(SPLIT), "data-0.gz") + ": split 'unlabeled' of Examples 5")
    assert "signature 'serving_default' of the model failed on an example (key columns: trip_id=11)" in message
    assert "Key: fare, Index: 0.  Data types don't match. Data type: string but expected type: float" in message
    assert "How to fix: score Examples that carry the raw features the model was trained on" in message
    assert "\n" not in message and "while running" not in message


@dataclasses.dataclass(frozen=True)
class _NoParams:
    pass


class _Source(Component):
    OUTPUTS = {"examples": Examples, "model": Model}
    PARAMETERS = _NoParams

    def __init__(self):
        super().__init__(inputs={}, parameters=_NoParams())


_SOURCE = _Source()


def _examples_with(tmp_path, rows):
    """An Examples artifact (id 5) with one split of tf.Examples made from ``rows`` (no column_kinds)."""
    import tensorflow as tf

    uri = tmp_path / "examples"
    (uri / f"Split-{SPLIT}").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(uri / f"Split-{SPLIT}" / "data-0.gz"), options="GZIP") as writer:
        for row in rows:
            feature = {}
            for key, value in row.items():
                if isinstance(value, int):
                    feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
                elif isinstance(value, float):
                    feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                else:
                    feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return Examples(uri=str(uri), properties={"split_names": [SPLIT]}, id=5)


def test_parameter_errors():
    with pytest.raises(TypeError, match=r"BulkInferrer got splits='eval'; expected a list of names\. How to fix: "
                                        r"pass splits=\['eval'\]"):
        BulkInferrerParameters(splits="eval")
    with pytest.raises(ValueError, match=r"BulkInferrer got output_formats=\['csv', 'json'\]; expected a subset of "
                                         r"\['csv', 'parquet'\]"):
        BulkInferrerParameters(output_formats=("csv", "json"))
    with pytest.raises(ValueError, match=r"BulkInferrer got key_columns=\['trip_id'\] with output_formats=\(\)"):
        BulkInferrerParameters(key_columns=("trip_id",), output_formats=())
    with pytest.raises(ValueError, match=r"BulkInferrer got key_columns=\['a', 'a'\] naming \['a'\] twice"):
        BulkInferrerParameters(key_columns=["a", "a"])
    with pytest.raises(ValueError, match=r"BulkInferrer got batch_size=0; expected an int >= 1"):
        BulkInferrerParameters(batch_size=0)
    with pytest.raises(ValueError, match=r"BulkInferrer got signature_name=''"):
        BulkInferrerParameters(signature_name="")
    with pytest.raises(ValueError, match=r"BulkInferrer got splits entry ''; expected a non-empty string"):
        BulkInferrerParameters(splits=[""])
    assert BulkInferrerParameters(splits=["eval"], key_columns=["a"]).splits == ("eval",)


def _signature_def(method, inputs, outputs):
    from tensorflow.core.protobuf import meta_graph_pb2

    signature = meta_graph_pb2.SignatureDef(method_name=method)
    for key, dtype in inputs.items():
        signature.inputs[key].dtype = dtype
    for key in outputs:
        signature.outputs[key].dtype = 1
    return signature


@pytest.mark.parametrize("method,inputs,outputs,problem", [
    ("tensorflow/serving/classify", {"examples": 7}, ["scores"], r"needs exactly one string input 'inputs', but it "
                                                                 r"takes \['examples'\]"),
    ("tensorflow/serving/classify", {"inputs": 7}, ["probabilities"], r"a classify signature outputs 'classes' "
                                                                      r"and/or 'scores', but it outputs \['probabilities'\]"),
    ("tensorflow/serving/regress", {"inputs": 7}, ["outputs", "extra"], r"a regress signature outputs 'outputs', but "
                                                                         r"it outputs \['extra', 'outputs'\]"),
    ("tensorflow/serving/predict", {"examples": 7, "weights": 1}, ["y"], r"it takes inputs \['examples', 'weights'\], "
                                                                         r"not one tensor of serialized tf.Examples"),
])
def test_signatures_that_cannot_take_examples_say_why(method, inputs, outputs, problem):
    from components.bulk_inferrer.signature import _problem

    assert re.search(problem, _problem(_signature_def(method, inputs, outputs)))
    assert _problem(_signature_def(method, {"inputs": 7}, ["outputs" if "regress" in method else "scores"])) is None


def test_table_layout_refuses_answers_it_cannot_label():
    from components.bulk_inferrer.tables import PredictionLayout

    labels = np.array([[b"0", b"1"]], object)
    layout = PredictionLayout.from_outputs("classify", {"classes": labels, "scores": np.array([[0.3, 0.7]], np.float32)}, 1)
    assert [c.name for c in layout.columns] == ["score_0", "score_1", "predicted_class"]
    with pytest.raises(ValueError, match=r"the model answered classes \['1', '0'\] for some examples and \['0', '1'\] "
                                         r"for the first ones"):
        layout.values({"classes": np.array([[b"1", b"0"]], object), "scores": np.array([[0.3, 0.7]], np.float32)}, 1)
    with pytest.raises(ValueError, match=r"output 'scores' has 3 values per example here and 2 for the first examples"):
        layout.values({"classes": np.array([[b"0", b"1"]], object), "scores": np.array([[0.3, 0.6, 0.1]], np.float32)}, 1)
    with pytest.raises(ValueError, match=r"output 'y' has shape \[\]; expected \[2, \.\.\.\] for 2 examples"):
        PredictionLayout.from_outputs("predict", {"y": np.array(1.0)}, 2)
    with pytest.raises(ValueError, match=r"the outputs give columns \['a_0'\] twice"):
        PredictionLayout.from_outputs("predict", {"a": np.zeros((1, 2)), "a_0": np.zeros((1, 1))}, 1)
    with pytest.raises(ValueError, match=r"'outputs' has 2 values per example; expected 1"):
        PredictionLayout.from_outputs("regress", {"outputs": np.zeros((1, 2), np.float32)}, 1)
    with pytest.raises(ValueError, match=r"'classes' has 2 entries per example but 'scores' 3"):
        PredictionLayout.from_outputs("classify", {"classes": labels, "scores": np.zeros((1, 3), np.float32)}, 1)


def test_key_columns_hold_one_value_of_one_kind():
    import tensorflow as tf

    from components.bulk_inferrer.tables import Column, key_values

    def example(**features):
        return tf.train.Example(features=tf.train.Features(feature=features))

    ints = lambda *v: tf.train.Feature(int64_list=tf.train.Int64List(value=list(v)))  # noqa: E731
    text = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))
    assert key_values([example(id=ints(7)), example()], [Column("id", "int")]) == {"id": [7, None]}
    with pytest.raises(ValueError, match=r"key column 'id' holds 2 values in one example \(\[1, 2\]\)"):
        key_values([example(id=ints(1, 2))], [Column("id", "int")])
    with pytest.raises(ValueError, match=r"key column 'id' holds a string in one example but ints elsewhere"):
        key_values([example(id=text)], [Column("id", "int")])


def test_a_key_column_named_like_a_prediction_column_is_an_error():
    from components.bulk_inferrer.executor import _check_names
    from components.bulk_inferrer.signature import ScoringSignature
    from components.bulk_inferrer.tables import Column, PredictionLayout

    layout = PredictionLayout.from_outputs("regress", {"outputs": np.zeros((1, 1), np.float32)}, 1)
    with pytest.raises(ComponentError, match=r"key_columns=\['id', 'prediction'\]; \['prediction'\] are also prediction "
                                             r"columns of signature 'regression'"):
        _check_names([Column("id", "int"), Column("prediction", "float")], layout,
                     ScoringSignature("regression", "regress", "inputs", ("outputs",)))
