"""The three runtimes (TF2 loader, TF1 session fallback, TF Lite) and the TF Serving
options that change how a servable answers, in process on TF Serving's own test models."""

from __future__ import annotations

import concurrent.futures
import os
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2

import saved_models
from serving import flags
from serving import inference
from serving.errors import ServingError
from serving.servable import ServableOptions
from serving.servable import Servable
from serving.servable import TF2Runtime
from serving.servable import root_cause
from serving.tf1_session import TF1SessionRuntime
from serving.tflite_runtime import TFLiteRuntime
from serving.tflite_runtime import read_metadata

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "tf_serving")


def version_dir(model: str) -> str:
    return os.path.join(DATA, model, "00000123")


def predict_request(values, shape, signature="serving_default", output_filter=()):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = signature
    tensor = request.inputs["x"]
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.float_val.extend(values)
    for size in shape:
        tensor.tensor_shape.dim.add().size = size
    request.output_filter.extend(output_filter)
    return request


def example_request(kind, signature):
    request = kind()
    request.model_spec.name = "default"
    request.model_spec.signature_name = signature
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(2.0)
    return request


@pytest.fixture(scope="module")
def half_plus_two_tf1():
    return Servable("default", 123, version_dir("saved_model_half_plus_two_cpu"))


@pytest.fixture(scope="module")
def half_plus_two_tf2():
    return Servable("default", 123, version_dir("saved_model_half_plus_two_tf2_cpu"))


def test_tf2_loader_serves_a_tf1_model_with_the_request_shape(half_plus_two_tf1):
    """TF Serving feeds [3] to the [-1, 1] input; so does the loaded signature."""
    assert isinstance(half_plus_two_tf1.runtime, TF2Runtime)
    response = inference.predict(half_plus_two_tf1, predict_request([2.0, 3.0, 4.0], [3]))
    y = response.outputs["y"]
    assert [d.size for d in y.tensor_shape.dim] == [3]
    assert list(y.float_val) == [3.0, 3.5, 4.0]
    assert y.tensor_content == b""


def test_tensor_content_option_packs_numeric_outputs():
    servable = Servable("default", 123, version_dir("saved_model_half_plus_two_cpu"),
                        options=ServableOptions(serialize_as_tensor_content=True))
    y = inference.predict(servable, predict_request([2.0], [1, 1])).outputs["y"]
    assert list(y.float_val) == []
    assert np.frombuffer(y.tensor_content, np.float32).tolist() == [3.0]
    assert tf.make_ndarray(y).shape == (1, 1)


def test_tf1_session_fallback_serves_half_plus_three():
    """tf.saved_model.load cannot import it; TF Serving serves it, and so do we."""
    path = version_dir("saved_model_half_plus_three")
    with pytest.raises(Exception):  # noqa: B017 - whichever error the TF2 loader raises.
        tf.saved_model.load(path)
    servable = Servable("half_plus_three", 123, path)
    assert isinstance(servable.runtime, TF1SessionRuntime)
    y = inference.predict(servable, predict_request([2.0, 3.0], [2])).outputs["y"]
    assert list(y.float_val) == [4.0, 4.5]
    regress = inference.regress(
        servable, example_request(regression_pb2.RegressionRequest, "tensorflow/serving/regress"))
    assert [r.value for r in regress.result.regressions] == [4.0]
    # Concurrent calls share one session safely.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(
            lambda v: servable.run("serving_default", {"x": np.array([v], np.float32)})["y"][0],
            [float(i) for i in range(32)]))
    assert outs == [i / 2 + 3 for i in range(32)]


def test_tf1_fallback_reports_both_errors(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\x00not a saved model")
    with pytest.raises(ValueError, match="tf.saved_model.load failed .* and so did the TF1 session"):
        Servable("m", 1, str(tmp_path))


@pytest.mark.parametrize("check", [False, True])
def test_signature_method_name_check(half_plus_two_tf2, check):
    """TF2 signatures all say 'predict'; Classify/Regress run them unless the check is on."""
    servable = half_plus_two_tf2
    if check:
        servable = Servable("default", 123, version_dir("saved_model_half_plus_two_tf2_cpu"),
                            options=ServableOptions(enable_signature_method_name_check=True))
    assert servable.specs["classify_x_to_y"].method_name == tf.saved_model.PREDICT_METHOD_NAME
    classify = example_request(classification_pb2.ClassificationRequest, "classify_x_to_y")
    regress = example_request(regression_pb2.RegressionRequest, "regress_x_to_y")
    if check:
        for handler, request, api in ((inference.classify, classify, "Classify"),
                                      (inference.regress, regress, "Regress")):
            with pytest.raises(ServingError, match=f"{api} needs a signature with method_name "
                                                   ".*--enable_signature_method_name_check") as e:
                handler(servable, request)
            assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        return
    result = inference.classify(servable, classify).result.classifications[0].classes[0]
    assert (result.label, result.score) == ("", 3.0)
    assert inference.regress(servable, regress).result.regressions[0].value == 3.0


def test_classify_needs_an_inputs_key(half_plus_two_tf2):
    """classify_x2_to_y3 takes a float 'inputs' tensor: Classify refuses it, as TF Serving does."""
    request = example_request(classification_pb2.ClassificationRequest, "classify_x2_to_y3")
    with pytest.raises(ServingError, match="input 'inputs' of signature 'classify_x2_to_y3' is "
                                           "float32"):
        inference.classify(half_plus_two_tf2, request)


def test_tflite_without_and_with_stored_signature_defs():
    plain = TFLiteRuntime(version_dir("saved_model_half_plus_two_tflite"))
    assert set(plain.signature_defs) == {"serving_default"}
    assert plain.signature_defs["serving_default"].inputs["x"].name == "x"
    stored = TFLiteRuntime(version_dir("saved_model_half_plus_two_tflite_with_sigdef"),
                           num_interpreters=2)
    raw = read_metadata(open(os.path.join(version_dir(
        "saved_model_half_plus_two_tflite_with_sigdef"), "model.tflite"), "rb").read())
    assert "signature_defs_metadata" in raw
    sig = stored.signature_defs["serving_default"]
    assert sig.inputs["x"].name == "tflite_input"  # 'tflite_input:0' in the metadata.
    for runtime in (plain, stored):
        assert runtime.call("serving_default", {"x": np.array([2.0], np.float32)})["y"].tolist() == [3.0]
        # The model was converted with batch 1; inputs are resized per request.
        out = runtime.call("serving_default", {"x": np.array([[2.0], [4.0], [6.0]], np.float32)})
        assert out["y"].ravel().tolist() == [3.0, 4.0, 5.0]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        values = list(pool.map(
            lambda v: stored.call("serving_default", {"x": np.array([[v]], np.float32)})["y"][0, 0],
            [float(i) for i in range(40)]))
    assert values == [i / 2 + 2 for i in range(40)]


def test_tflite_needs_the_flag(tmp_path):
    shutil.copytree(version_dir("saved_model_half_plus_two_tflite"), tmp_path / "1")
    with pytest.raises(ValueError, match="start the server with --prefer_tflite_model=true"):
        Servable("m", 1, str(tmp_path / "1"))
    servable = Servable("m", 1, str(tmp_path / "1"),
                        options=ServableOptions(prefer_tflite_model=True))
    y = inference.predict(servable, predict_request([2.0], [1])).outputs["y"]
    assert list(y.float_val) == [3.0]


def test_root_cause_of_a_graph_execution_error():
    message = ("Graph execution error:\n\nDetected at node MatMul defined at (most recent call "
               "last):\n  File \"x.py\", line 1\n\nMatrix size-incompatible: In[0]: [1,4], "
               "In[1]: [3,1]\n\t [[{{node MatMul}}]] [Op:__inference_f_1]")
    assert root_cause(message) == "Matrix size-incompatible: In[0]: [1,4], In[1]: [3,1]"


def test_new_flags_parse():
    options = flags.parse_flags([
        "--model_base_path=/m", "--grpc_socket_path=/tmp/s.sock",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
        "--rest_api_timeout_in_ms=5000", "--enable_serialization_as_tensor_content=true",
        "--enable_signature_method_name_check", "--prefer_tflite_model=true",
        "--num_tflite_pools=3", "--profiler_port=6009",
    ])
    assert options.grpc_socket_path == "/tmp/s.sock"
    assert flags.grpc_channel_argument_pairs(options.grpc_channel_arguments) == [
        ("grpc.max_connection_age_ms", 2000), ("grpc.lb_policy_name", "grpclb")]
    assert options.enable_serialization_as_tensor_content and options.enable_signature_method_name_check
    assert options.prefer_tflite_model and options.num_tflite_pools == 3
    assert options.profiler_port == 6009 and options.rest_api_timeout_in_ms == 5000
    with pytest.raises(ValueError, match="expected key=value pairs separated by commas"):
        flags.parse_flags(["--model_base_path=/m", "--grpc_channel_arguments=nonsense"])


def test_metadata_lists_the_init_op_as_tf_serving_does(half_plus_two_tf2):
    """TF Serving's GetModelMetadata includes ``__saved_model_init_op``; it is never served."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    response = inference.get_model_metadata(half_plus_two_tf2, request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    init = signatures.signature_def["__saved_model_init_op"]
    assert init.outputs["__saved_model_init_op"].name == "NoOp"
    assert "__saved_model_init_op" not in half_plus_two_tf2.specs


def test_bytes_that_are_not_a_tf_example_are_invalid_argument(half_plus_two_tf2):
    """TF raises UnicodeDecodeError when ParseExample's error quotes the bytes; that is the
    request's fault."""
    with pytest.raises(ServingError) as e:
        half_plus_two_tf2.run("regress_x_to_y", {"inputs": np.array([b"\xff\xfe garbage"], object)})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_tflite_two_converter_signatures_each_run_their_own(tmp_path):
    """Each signature of a converted model has its own subgraph; none runs another's."""
    class TwoSignatures(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="a")])
        def add(self, a):
            return {"out": a + 100.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="b")])
        def mul(self, b):
            return {"out": b * 2.0}

    module = TwoSignatures()
    saved = str(tmp_path / "saved")
    tf.saved_model.save(module, saved, signatures={"add": module.add, "mul": module.mul})
    os.makedirs(tmp_path / "1")
    with open(tmp_path / "1" / "model.tflite", "wb") as f:
        f.write(tf.lite.TFLiteConverter.from_saved_model(saved).convert())
    runtime = TFLiteRuntime(str(tmp_path / "1"))
    assert set(runtime.signature_defs) == {"add", "mul"}
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert runtime.call("mul", {"b": x})["out"].tolist() == [[2.0, 4.0], [6.0, 8.0]]
    assert runtime.call("add", {"a": x[:1]})["out"].tolist() == [[101.0, 102.0]]


def test_tflite_a_rejected_shape_does_not_break_the_next_request():
    runtime = TFLiteRuntime(version_dir("saved_model_half_plus_two_tflite"))
    with pytest.raises(ServingError):
        runtime.call("serving_default", {"x": np.array(1.0, np.float32)})
    assert runtime.call("serving_default", {"x": np.array([[2.0]], np.float32)})["y"].tolist() == [[3.0]]


def test_declared_shapes_cannot_cost_more_than_the_payload():
    from tensorflow.core.framework import tensor_pb2

    from serving import tensor_codec

    def proto(shape, field="float_val", values=(1.0,), dtype=types_pb2.DT_FLOAT):
        p = tensor_pb2.TensorProto(dtype=dtype)
        for size in shape:
            p.tensor_shape.dim.add().size = size
        getattr(p, field).extend(values)
        return p

    for bad, pattern in (
        (proto([8192, 8192]), "more than the 67108864 bytes a single value may fill"),
        (proto([2 ** 32, 2 ** 32]), "more than the 2147483648 one tensor may have"),
        (proto([1 << 20, 1 << 20], "string_val", [b"x"], types_pb2.DT_STRING), "one tensor may"),
        (proto([1], "int_val", [300], types_pb2.DT_UINT8), "does not fit uint8"),
    ):
        with pytest.raises(ServingError, match=pattern) as e:
            tensor_codec.to_ndarray(bad, name="x")
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert tensor_codec.to_ndarray(proto([4, 2])).tolist() == [[1.0, 1.0]] * 4  # TF's fill rule.


def test_unix_socket_of_a_live_server_is_not_taken(tmp_path, exports):
    """A stale socket file is replaced; one a live server listens on is refused."""
    from serving.flags import ServerOptions
    from serving.server import ModelServer

    base = tmp_path / "m"
    saved_models.push_version(str(base), 1, exports[1])
    path = str(tmp_path / "s.sock")
    options = ServerOptions(port=0, model_name="m", model_base_path=str(base),
                            grpc_socket_path=path, file_system_poll_wait_seconds=0)
    first = ModelServer(options)
    first.start()
    try:
        with pytest.raises(OSError, match="Another server listens on the Unix socket"):
            ModelServer(options)
    finally:
        first.stop(grace=0)
    second = ModelServer(options)  # The first left its socket file behind, or removed it.
    second.stop(grace=0)
