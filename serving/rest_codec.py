"""JSON <-> tensors and tf.Examples for the TF Serving REST API.

Predict accepts the row format (``"instances"``) and the columnar format
(``"inputs"``). Binary strings travel as ``{"b64": "..."}``; string outputs
whose alias ends in ``_bytes`` (or that are not UTF-8) are returned that way.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow_serving.apis import input_pb2

from serving import errors
from serving.signature import SignatureSpec
from serving.signature import TensorSpecInfo

B64 = "b64"
BYTES_SUFFIX = "_bytes"


def parse_json(body: bytes) -> dict:
    """Parses a request body that must be a JSON object."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise errors.invalid_argument(
            f"Malformed JSON in the request body: {e}. Send a JSON object such as "
            '{"instances": [[1.0, 2.0, 3.0]]}.'
        ) from e
    if not isinstance(value, dict):
        raise errors.invalid_argument(
            f"The request body must be a JSON object; got {type(value).__name__}.")
    return value


def _decode_b64(value: dict, where: str) -> bytes:
    if set(value) != {B64} or not isinstance(value[B64], str):
        raise errors.invalid_argument(
            f"{where}: a JSON object used as a value must be {{\"b64\": \"<base64>\"}}; "
            f"got keys {sorted(value)}."
        )
    try:
        return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError) as e:
        raise errors.invalid_argument(
            f"{where}: invalid base64 in {{\"b64\": ...}}: {e}; encode the bytes with "
            "standard base64 (A-Z, a-z, 0-9, +, /, = padding)."
        ) from e


def _strings(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_strings(v, where) for v in value]
    if isinstance(value, dict):
        return _decode_b64(value, where)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise errors.invalid_argument(
        f"{where} expects string values but got {json.dumps(value)}; send JSON strings "
        'or {"b64": ...} objects.'
    )


def _shape_of(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        return ()
    shapes = {_shape_of(v, where) for v in value}
    if len(shapes) > 1:
        raise errors.invalid_argument(
            f"{where} is a ragged list (elements of shapes {sorted(shapes)}); all rows "
            "must have the same shape."
        )
    return (len(value),) + (shapes.pop() if shapes else ())


def to_array(value: Any, spec: TensorSpecInfo, where: str) -> np.ndarray:
    """Converts a JSON value into an array of the signature's dtype."""
    shape = _shape_of(value, where)
    if spec.dtype == tf.string:
        array = np.empty(shape, dtype=object)
        flat = _strings(value, where)
        if shape:
            array = _nested_fill(flat, shape)
        else:
            array[()] = flat
        return array
    try:
        raw = np.asarray(value)
    except ValueError as e:
        raise errors.invalid_argument(f"{where} could not be read as a tensor: {e}") from e
    want = np.dtype(spec.dtype.as_numpy_dtype)
    ok = raw.dtype.kind in "biuf" and not (want.kind in "iu" and raw.dtype.kind == "f")
    if want.kind == "b":
        ok = raw.dtype.kind == "b"
    if raw.size == 0:
        ok = True
    if not ok:
        sample = raw.reshape(-1)[0] if raw.size else value
        raise errors.invalid_argument(
            f"{where} expects {spec.dtype.name} values but got {json.dumps(_jsonable(sample))} "
            f"(JSON {type(_jsonable(sample)).__name__}); send numbers of type "
            f"{spec.dtype.name}."
        )
    return raw.astype(want)


def _nested_fill(flat, shape):
    array = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        item = flat
        for i in index:
            item = item[i]
        array[index] = item
    return array


def _jsonable(value):
    return value.item() if isinstance(value, np.generic) else value


def predict_inputs(body: dict, spec: SignatureSpec) -> tuple[dict[str, np.ndarray], bool]:
    """Reads ``instances`` or ``inputs``; returns (inputs, is_row_format)."""
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise errors.invalid_argument(
            "The request must contain exactly one of 'instances' (row format) or "
            f"'inputs' (columnar format); got keys {sorted(body)}."
        )
    names = sorted(spec.inputs)
    if has_rows:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise errors.invalid_argument(
                "'instances' must be a non-empty JSON list with one entry per example.")
        named = all(isinstance(r, dict) and B64 not in r for r in rows)
        if named:
            columns = {}
            for i, row in enumerate(rows):
                if set(row) != set(names):
                    raise errors.invalid_argument(
                        f"instances[{i}] has keys {sorted(row)}; signature {spec.key!r} "
                        f"expects exactly {names}."
                    )
            for name in names:
                columns[name] = [row[name] for row in rows]
        elif len(names) == 1:
            columns = {names[0]: rows}
        else:
            raise errors.invalid_argument(
                f"Signature {spec.key!r} has several inputs {names}; each of 'instances' "
                'must be an object such as {"' + names[0] + '": ...}.'
            )
        return {k: to_array(v, spec.inputs[k], f"Input {k!r}") for k, v in columns.items()}, True
    columns = body["inputs"]
    if not (isinstance(columns, dict) and B64 not in columns):
        if len(names) != 1:
            raise errors.invalid_argument(
                f"Signature {spec.key!r} has several inputs {names}; 'inputs' must be an "
                "object mapping each input name to its value."
            )
        columns = {names[0]: columns}
    unknown = sorted(set(columns) - set(names))
    missing = sorted(set(names) - set(columns))
    if unknown or missing:
        raise errors.invalid_argument(
            f"'inputs' has unknown {unknown} and lacks {missing}; signature {spec.key!r} "
            f"expects exactly {names}."
        )
    return {k: to_array(v, spec.inputs[k], f"Input {k!r}") for k, v in columns.items()}, False


def _to_json(name: str, array: np.ndarray) -> Any:
    if array.dtype.kind in ("O", "S"):
        encode_b64 = name.endswith(BYTES_SUFFIX)

        def convert(item):
            if isinstance(item, bytes):
                if not encode_b64:
                    try:
                        return item.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
                return {B64: base64.b64encode(item).decode("ascii")}
            return item

        if array.ndim == 0:
            return convert(array.item())
        return np.vectorize(convert, otypes=[object])(array).tolist()
    return array.tolist()


def predict_response(outputs: dict[str, np.ndarray], *, row_format: bool) -> dict:
    """``{"predictions": [...]}`` (row) or ``{"outputs": ...}`` (columnar)."""
    if not row_format:
        if len(outputs) == 1:
            (name, value), = outputs.items()
            return {"outputs": _to_json(name, value)}
        return {"outputs": {k: _to_json(k, v) for k, v in outputs.items()}}
    sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise errors.invalid_argument(
            "The row format needs every output to have the same batch size; got shapes "
            + ", ".join(f"{k}: {list(v.shape)}" for k, v in outputs.items())
            + ". Use the columnar format ('inputs') instead."
        )
    columns = {k: _to_json(k, v) for k, v in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    n = sizes.pop()
    return {"predictions": [{k: col[i] for k, col in columns.items()} for i in range(n)]}


def _feature(value: Any, where: str) -> feature_pb2.Feature:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise errors.invalid_argument(f"{where} is an empty list; give at least one value.")
    if all(isinstance(v, bool) for v in values) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=[int(v) for v in values]))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=values))
    if all(isinstance(v, (str, dict)) for v in values):
        return feature_pb2.Feature(bytes_list=feature_pb2.BytesList(value=_strings(values, where)))
    raise errors.invalid_argument(
        f"{where} mixes value types {sorted({type(v).__name__ for v in values})}; a feature "
        "holds only integers, only numbers, or only strings."
    )


def _example(value: Any, where: str) -> example_pb2.Example:
    if not isinstance(value, dict):
        raise errors.invalid_argument(
            f"{where} must be a JSON object of feature name to value(s); got "
            f"{type(value).__name__}."
        )
    example = example_pb2.Example()
    for name, feature in value.items():
        example.features.feature[name].CopyFrom(_feature(feature, f"{where}[{name!r}]"))
    return example


def examples_input(body: dict) -> input_pb2.Input:
    """Reads ``examples`` (and optional ``context``) into an ``Input`` proto."""
    rows = body.get("examples")
    if not isinstance(rows, list) or not rows:
        raise errors.invalid_argument(
            "The request needs 'examples': a non-empty JSON list of objects mapping "
            "feature names to values."
        )
    examples = [_example(row, f"examples[{i}]") for i, row in enumerate(rows)]
    result = input_pb2.Input()
    if "context" in body:
        target = result.example_list_with_context
        target.context.CopyFrom(_example(body["context"], "context"))
    else:
        target = result.example_list
    target.examples.extend(examples)
    return result


def classify_response(response) -> dict:
    """``{"results": [[[label, score], ...], ...]}``."""
    return {"results": [
        [[c.label, c.score] for c in classifications.classes]
        for classifications in response.result.classifications
    ]}


def regress_response(response) -> dict:
    """``{"results": [value, ...]}``."""
    return {"results": [r.value for r in response.result.regressions]}
