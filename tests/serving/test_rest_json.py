"""REST JSON as TF Serving writes and reads it: metadata, status, numbers, limits."""

from __future__ import annotations

import base64
import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import MODEL
from http_util import call
from serving import rest_codec
from serving.config_files import ModelSpecConfig
from serving.config_files import MonitoringOptions
from serving.errors import ServingError
from serving.metrics import ServingMetrics
from serving.model_manager import ManagerOptions
from serving.model_manager import ModelManager
from serving.rest_server import RestApp
from serving.signature import TensorSpecInfo

DATA = os.path.join(os.path.dirname(__file__), os.pardir, "data", "tf_serving")
PREDICT = f"/v1/models/{MODEL}:predict"


def raw_call(url, body=None):
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --- Metadata and status ---------------------------------------------------------------------

def _map_sorted(value, path=()):
    """Sorts the keys of proto map fields only, so other keys keep their order."""
    if isinstance(value, list):
        return [_map_sorted(v, path) for v in value]
    if not isinstance(value, dict):
        return value
    is_map = path[-1:] in (("signature_def",), ("inputs",), ("outputs",), ("defaults",)) and (
        path[-2:] != ("metadata", "signature_def"))
    keys = sorted(value) if is_map else list(value)
    return {k: _map_sorted(value[k], path + (k,)) for k in keys}


@pytest.fixture(scope="module")
def half_plus_two_app():
    base = os.path.join(DATA, "saved_model_half_plus_two_cpu")
    if not os.path.isdir(base):
        pytest.skip("tests/data/tf_serving/saved_model_half_plus_two_cpu is not there")
    manager = ModelManager([ModelSpecConfig("default", base)],
                           options=ManagerOptions(file_system_poll_wait_seconds=0))
    manager.start()
    try:
        if not manager.available_versions("default"):
            pytest.skip("the TF1 SavedModel half_plus_two does not load in this build")
        yield RestApp(manager, ServingMetrics(), monitoring=MonitoringOptions(),
                      max_request_bytes=1 << 20)
    finally:
        manager.stop()


def test_metadata_is_tf_servings_json(half_plus_two_app):
    """TF Serving's own reference answer for half_plus_two, key order included."""
    response = half_plus_two_app.handle("GET", "/v1/models/default/metadata")
    assert response.status == 200
    with open(os.path.join(DATA, "half_plus_two_model_metadata.json"), encoding="utf-8") as f:
        expected = json.load(f)
    got = json.loads(response.body)
    assert got == expected
    assert json.dumps(_map_sorted(got)) == json.dumps(_map_sorted(expected))
    # Byte layout of TF Serving's http_rest_api_util ToJsonString.
    assert response.body.startswith(
        b'{\n"model_spec":{\n "name": "default",\n "signature_name": "",\n "version": "123"\n}\n'
        b',\n"metadata": {"signature_def": {\n "signature_def": {\n')
    assert response.body.endswith(b"\n }\n}\n}\n}\n")
    assert response.content_type == "application/json"


def test_status_is_tf_servings_json(half_plus_two_app):
    response = half_plus_two_app.handle("GET", "/v1/models/default")
    assert response.body == (
        b'{\n "model_version_status": [\n  {\n   "version": "123",\n   "state": "AVAILABLE",\n'
        b'   "status": {\n    "error_code": "OK",\n    "error_message": ""\n   }\n  }\n ]\n}\n')


def test_metadata_of_a_tf2_model_prints_every_default(rest_url):
    status, body = raw_call(f"{rest_url}/v1/models/{MODEL}/versions/1/metadata")
    assert status == 200
    assert body.startswith(
        b'{\n"model_spec":{\n "name": "tiny",\n "signature_name": "",\n "version": "1"\n}\n')
    assert b"@type" not in body
    value = json.loads(body)
    assert list(value) == ["model_spec", "metadata"]
    signatures = value["metadata"]["signature_def"]["signature_def"]
    assert list(signatures) == sorted(signatures)
    for signature in signatures.values():
        assert list(signature) == ["inputs", "outputs", "method_name", "defaults"]
        for info in [*signature["inputs"].values(), *signature["outputs"].values()]:
            assert list(info) == ["dtype", "tensor_shape", "name"]
            assert list(info["tensor_shape"]) == ["dim", "unknown_rank"]
            for dim in info["tensor_shape"]["dim"]:
                assert list(dim) == ["size", "name"] and isinstance(dim["size"], str)
    x = signatures["serving_default"]["inputs"]["x"]
    assert x["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}, {"size": "3", "name": ""}],
                                 "unknown_rank": False}


# --- Numbers out -----------------------------------------------------------------------------

def test_float32_outputs_print_as_float32(rest_url):
    status, body = raw_call(rest_url + PREDICT, {"inputs": [[0.05, 0.1, 0.35]]})
    assert status == 200
    assert b'"doubled":[[0.1,0.2,0.7]]' in body, body
    value = json.loads(body)
    x = np.array([[0.05, 0.1, 0.35]], np.float32)
    np.testing.assert_array_equal(np.float32(value["outputs"]["doubled"]), 2 * x)


def test_non_finite_values_in_and_out(rest_url):
    status, body = raw_call(rest_url + PREDICT, b'{"inputs": [[NaN, Infinity, -Infinity]]}')
    assert status == 200, body
    assert b'"doubled":[[NaN,Infinity,-Infinity]]' in body
    assert b'"y":[[NaN]]' in body
    assert np.isnan(json.loads(body)["outputs"]["y"][0][0])


def test_output_encoding_units():
    outputs = {
        "f": np.array([[0.1, np.nan], [np.inf, -np.inf]], np.float32),
        "d": np.array([0.1, 1e300]),
        "i": np.array([1, -2], np.int64),
        "b": np.array([True, False]),
        "s": np.array([b"caf\xc3\xa9", b"\xff"], dtype=object),
        "x_bytes": np.array([b"ok", b"\x00"], dtype=object),
        "h": np.array([1.5, 2.0], dtype=tf.bfloat16.as_numpy_dtype),
    }
    rows = rest_codec.dumps(rest_codec.predict_response(outputs, row_format=True))
    assert rows == (
        b'{"predictions":[{"f":[0.1,NaN],"d":0.1,"i":1,"b":true,"s":"caf\xc3\xa9",'
        b'"x_bytes":{"b64":"b2s="},"h":1.5},'
        b'{"f":[Infinity,-Infinity],"d":1e+300,"i":-2,"b":false,"s":{"b64":"/w=="},'
        b'"x_bytes":{"b64":"AA=="},"h":2.0}]}')
    columns = rest_codec.dumps(rest_codec.predict_response(
        {"f": outputs["f"], "scalar": np.array(b"abc", dtype=object)}, row_format=False))
    assert columns == b'{"outputs":{"f":[[0.1,NaN],[Infinity,-Infinity]],"scalar":"abc"}}'
    only = rest_codec.dumps(rest_codec.predict_response({"f": outputs["f"][:, :1].T},
                                                        row_format=False))
    assert only == b'{"outputs":[[0.1,Infinity]]}'  # Not C-contiguous in.


# --- Numbers in ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,kind", [((1, 224, 224, 3), "f"), ((300, 300), "i"),
                                        ((70000,), "f"), ((5000, 3, 2), "i")])
def test_large_numeric_bodies_parse_like_small_ones(shape, kind):
    rng = np.random.default_rng(0)
    values = rng.random(shape) if kind == "f" else rng.integers(-2**40, 2**40, shape)
    for key, extra in (("instances", {}), ("inputs", {"signature_name": "s"})):
        body = json.dumps({**extra, key: values.tolist()}).encode()
        assert len(body) >= 1 << 16
        fast = rest_codec.parse_json(body)
        assert isinstance(fast[key], rest_codec.NumericArray)
        assert fast.get("signature_name") == extra.get("signature_name")
        general = np.asarray(json.loads(body)[key])
        assert fast[key].array.dtype == general.dtype
        np.testing.assert_array_equal(fast[key].array, general)


ROWS = ", ".join(["[1.0, 2.0]"] * 9000)


@pytest.mark.parametrize("raw", [
    f'{{"instances": [{ROWS}, [1.0]]}}',                                # ragged
    f'{{"instances": [{ROWS}, [1.0, "a"]]}}',                           # a string
    f'{{"instances": [{ROWS}], "extra": 1}}',                           # another key
    f'{{"instances": [{ROWS}, []]}}',                                   # an empty list
    f'{{"instances": [{ROWS}, [true, 1.0]]}}',                          # booleans
    f'{{"instances": [{ROWS}, [1.0, 2.0 3.0]]}}',                       # a missing comma
    f'{{"signature_name": "a", "instances": [{ROWS}], "signature_name": "b"}}',  # twice
    f'{{"signature_name": "\\u0061", "instances": [{ROWS}]}}',           # an escape
])
def test_large_bodies_the_fast_path_leaves_alone(raw):
    raw = raw.encode()
    assert len(raw) >= 1 << 16
    assert rest_codec._parse_numeric(raw) is None  # noqa: SLF001
    try:
        expected = json.loads(raw)
    except ValueError:
        with pytest.raises(ServingError, match="Malformed JSON"):
            rest_codec.parse_json(raw)
    else:
        assert rest_codec.parse_json(raw) == expected


def test_large_request_end_to_end(rest_url, exports):
    rows = np.random.default_rng(1).random((10000, 3)).astype(np.float32)
    status, body = raw_call(rest_url + PREDICT, {"instances": rows.tolist()})
    assert status == 200, body[:300]
    expected = tf.saved_model.load(exports[2]).signatures["serving_default"](x=tf.constant(rows))
    got = json.loads(body)["predictions"]
    np.testing.assert_array_equal(np.float32([p["y"] for p in got]), expected["y"].numpy())
    np.testing.assert_array_equal(np.float32([p["doubled"] for p in got]),
                                  expected["doubled"].numpy())


def test_to_array_rules():
    f32 = TensorSpecInfo(tf.float32, (None,))
    i32 = TensorSpecInfo(tf.int32, (None,))
    b = TensorSpecInfo(tf.bool, (None,))
    s = TensorSpecInfo(tf.string, (None,))
    assert rest_codec.to_array([1, 2.5], f32, "x").dtype == np.float32
    assert rest_codec.to_array([True], b, "x").tolist() == [True]
    assert rest_codec.to_array(["a", {"b64": "YWI"}], s, "x").tolist() == [b"a", b"ab"]
    for value, spec, pattern in [
        ([2**31], i32, r"outside \[-2147483648, 2147483647\]"),
        ([1.5], i32, "expects int32 values but got 1.5"),
        ([True], f32, "expects float32 values but got true"),
        ([1], b, "expects bool values but got 1"),
        ([None], f32, "expects float32 values but got null"),
        ([{"a": 1}], f32, r'expects float32 values but got \{"a":1\}'),
        ([[1.0], 2.0], f32, "ragged list"),
        ([["a"], "b"], s, "ragged list"),
        ([1], s, "expects string values but got 1"),
    ]:
        with pytest.raises(ServingError, match=pattern):
            rest_codec.to_array(value, spec, "x")


# --- Requests that must be 400, not 500 -------------------------------------------------------

@pytest.mark.parametrize("body", [
    b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"instances": ' + b"[" * 900 + b"1.0" + b"]" * 900 + b"}",
    b'{"signature_name": "echo", "instances": ' + b"[" * 900 + b'"a"' + b"]" * 900 + b"}",
    b'{"signature_name": "two_inputs", "instances": ' + b"[" * 900 + b"1" + b"]" * 900 + b"}",
])
def test_deeply_nested_json_is_400(rest_url, body):
    status, got = call(rest_url + PREDICT, raw=body)
    assert status == 400, got
    assert "nested too deeply" in got["error"] or "ragged" in got["error"] or (
        "several inputs" in got["error"])


@pytest.mark.parametrize("path,body", [
    (PREDICT, {"signature_name": "classify",
               "instances": [{"b64": base64.b64encode(b"\n\xff\xff\x01garbage").decode()}]}),
    (PREDICT, {"signature_name": "regress",
               "inputs": {"inputs": [{"b64": base64.b64encode(b"\x12\xfe junk").decode()}]}}),
    (f"/v1/models/{MODEL}:classify", {"signature_name": "classify",
                                      "examples": [{"x": {"b64": "AAFnYXJiYWdl"}}]}),
])
def test_bytes_that_are_no_tf_example_are_400(rest_url, path, body):
    status, got = call(rest_url + path, body)
    assert status == 400, got
    assert "failed on this request" in got["error"]


def test_signature_name_and_int_range_over_http(rest_url):
    status, got = call(rest_url + PREDICT, {"signature_name": "two_inputs", "instances": [
        {"a": 2**63, "b": [1.0, 2.0]}]})
    assert status == 400 and "outside" in got["error"], got


def test_parse_errors():
    with pytest.raises(ServingError, match="Malformed JSON"):
        rest_codec.parse_json(b'{"instances": [1,')
    with pytest.raises(ServingError, match="must be a JSON object; got list"):
        rest_codec.parse_json(b"[1]")
    start = time.perf_counter()
    with pytest.raises(ServingError, match="nested too deeply"):
        rest_codec.parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert time.perf_counter() - start < 5


def test_a_lopsided_skeleton_is_not_expanded():
    """~9N bytes of brackets and commas must not build an N**3 skeleton to compare with."""
    from serving import rest_codec

    n = 2000
    lopsided = b"[" * 3 + b"," * n + b"]" + (b",[]" * n) + b"]" + (b",[[]]" * n) + b"]"
    assert rest_codec._regular_shape(lopsided) is None  # noqa: SLF001
    assert rest_codec._regular_shape(b"[[,,],[,,]]") == (2, 3)  # noqa: SLF001


def test_non_finite_scalars_and_row_values_print_as_tokens():
    from serving import rest_codec

    assert rest_codec.dumps(rest_codec.predict_response(
        {"a": np.array(np.nan, np.float32)}, row_format=False)) == b'{"outputs":NaN}'
    rows = rest_codec.dumps(rest_codec.predict_response(
        {"a": np.array([1.0, np.inf], np.float32), "b": np.array([1, 2])}, row_format=True))
    assert rows == b'{"predictions":[{"a":1.0,"b":1},{"a":Infinity,"b":2}]}'
