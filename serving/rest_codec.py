"""JSON <-> tensors and tf.Examples for the TF Serving REST API.

Predict accepts the row format (``"instances"``) and the columnar format
(``"inputs"``). Binary strings travel as ``{"b64": "..."}``; string outputs
whose alias ends in ``_bytes`` (or that are not UTF-8) are returned that way.

Speed: bodies are parsed with ``orjson`` (falling back to the standard
library only for the ``NaN``/``Infinity`` tokens TF Serving accepts), numeric
lists become arrays in one ``np.asarray`` call, and responses are written by
``orjson`` straight from the output arrays. Bodies of 64 KiB or more that hold
only numbers (an image as nested float lists) skip the nested lists: their
brackets are checked for a regular shape and the numbers parsed as one flat
list (``NumericArray``); other large bodies are parsed with the cyclic GC
paused. float32 outputs print as the
shortest decimal that reads back as the same float32 (``0.1``, not
``0.10000000149011612``), non-finite values as TF Serving's ``NaN``,
``Infinity`` and ``-Infinity``.

Status and metadata responses are printed the way TF Serving prints them
(protobuf's C++ JSON printer with whitespace and every default field), see
``status_json`` and ``metadata_json``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import json
import math
import re
import threading
from typing import Any

import grpc
import numpy as np
import orjson
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import input_pb2

from serving import errors
from serving.signature import SignatureSpec
from serving.signature import TensorSpecInfo

B64 = "b64"
BYTES_SUFFIX = "_bytes"
# numpy allows at most 64 dimensions; TF Serving's parser is iterative and
# unbounded, but no tensor is deeper than this.
MAX_DEPTH = 64
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# dtypes orjson writes natively (float32 with float32's shortest repr).
_NATIVE = frozenset(np.dtype(t) for t in (
    np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
    np.uint8, np.uint16, np.uint32, np.uint64, np.bool_))
_NON_FINITE = {"nan": b"NaN", "inf": b"Infinity", "-inf": b"-Infinity"}


# --- Request bodies --------------------------------------------------------------------------

class NumericArray:
    """A numeric ``instances``/``inputs`` value already read into an array.

    ``parse_json`` returns it in place of the nested lists for large bodies
    that are only numbers; ``predict_inputs`` takes either.
    """

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


# Bodies at least this large try the numeric fast path and parse without GC.
_LARGE = 1 << 16
_PREFIX = re.compile(
    rb'\s*\{\s*(?:"signature_name"\s*:\s*"(?P<sig>[^"\\]*)"\s*,\s*)?'
    rb'"(?P<key>instances|inputs)"\s*:\s*')
_SUFFIX = re.compile(rb'\s*(?:,\s*"signature_name"\s*:\s*"(?P<sig>[^"\\]*)"\s*)?\}\s*')
_NUMBER = b"0123456789.eE+-"
_SPACE = b" \t\r\n"
_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def _gc_paused():
    """Pauses the cyclic GC (process-wide, counted across threads).

    Parsing a large body creates tens of thousands of lists, which triggers
    full collections over TensorFlow's large heap and doubles the parse
    time; the parsed values hold no reference cycles.
    """
    global _gc_pauses, _gc_was_enabled  # noqa: PLW0603
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _regular_shape(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape of a nested list from its brackets and commas, if it is regular."""
    depth = len(skeleton) - len(skeleton.lstrip(b"["))
    if not 0 < depth <= MAX_DEPTH:
        return None
    dims = []
    for level in range(1, depth + 1):
        closer = b"]" * (depth - level + 1)
        end = skeleton.find(closer)
        if end < 0:
            return None
        first = skeleton[level - 1:end + len(closer)]  # The first list at this level.
        inner = depth - level
        separator = b"]" * inner + b"," + b"[" * inner
        dims.append(first.count(separator) + 1)
    # A regular list of these dims has at least prod(dims) - 1 commas; a lopsided
    # skeleton (a long first row, say) must not make us build a huge one to compare.
    if math.prod(dims) > skeleton.count(b",") + 1:
        return None
    expected = b"[" + b"," * (dims[-1] - 1) + b"]"
    for dim in reversed(dims[:-1]):
        expected = b"[" + b",".join([expected] * dim) + b"]"
    return tuple(dims) if expected == skeleton else None


def _parse_numeric(body: bytes) -> dict | None:
    """Reads ``{"instances"|"inputs": <numbers>}`` without building nested lists.

    Returns None (use the general parser) for anything else: other keys,
    strings, booleans, NaN, empty or ragged lists, malformed numbers.
    """
    start = body.find(b"[")
    prefix = _PREFIX.fullmatch(body, 0, start) if start > 0 else None
    if prefix is None:
        return None
    end = body.rfind(b"]") + 1
    suffix = _SUFFIX.fullmatch(body, end)
    if suffix is None or prefix["sig"] is not None and suffix["sig"] is not None:
        return None
    region = body[start:end]
    allowed = b"[]," + _NUMBER + _SPACE
    if region[:256].translate(None, allowed) or region.translate(None, allowed):
        return None  # The first test rejects strings (b64 images) without copying them.
    shape = _regular_shape(region.translate(None, _NUMBER + _SPACE))
    if shape is None:
        return None
    try:
        flat = orjson.loads(b"[" + region.translate(None, b"[]") + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(flat) != math.prod(shape):
        return None
    payload: dict[str, Any] = {prefix["key"].decode(): NumericArray(
        np.asarray(flat).reshape(shape))}
    signature = prefix["sig"] if prefix["sig"] is not None else suffix["sig"]
    if signature is not None:
        try:
            payload["signature_name"] = signature.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return payload


def parse_json(body: bytes) -> dict:
    """Parses a request body that must be a JSON object.

    Large bodies holding only ``instances``/``inputs`` numbers (and maybe
    ``signature_name``) come back with a ``NumericArray`` for the numbers.

    Raises:
        ServingError: INVALID_ARGUMENT for malformed or too deeply nested
            JSON, and for anything but an object at the top level.
    """
    if len(body) < _LARGE:
        return _parse(body)
    numeric = _parse_numeric(body)
    if numeric is not None:
        return numeric
    with _gc_paused():
        return _parse(body)


def _parse(body: bytes) -> dict:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        # orjson rejects NaN/Infinity, which TF Serving's parser accepts; the
        # standard library reads them (and reports the error otherwise).
        try:
            value = json.loads(body)
        except (UnicodeDecodeError, ValueError) as e:
            raise errors.invalid_argument(
                f"Malformed JSON in the request body: {e}. Send a JSON object such as "
                '{"instances": [[1.0, 2.0, 3.0]]}.'
            ) from e
        except RecursionError:
            raise _too_deep("The request body") from fast_error
    if not isinstance(value, dict):
        raise errors.invalid_argument(
            f"The request body must be a JSON object; got {type(value).__name__}.")
    return value


def _too_deep(where: str) -> errors.ServingError:
    return errors.invalid_argument(
        f"{where} is nested too deeply; a tensor has at most {MAX_DEPTH} dimensions.")


def _decode_b64(value: dict, where: str) -> bytes:
    text = value.get(B64)
    if len(value) != 1 or not isinstance(text, str):
        raise errors.invalid_argument(
            f"{where}: a JSON object used as a value must be {{\"b64\": \"<base64>\"}}; "
            f"got keys {sorted(value)}."
        )
    try:
        data = text.encode("ascii")  # a2b_base64 is twice as fast on bytes as on str.
        if len(data) % 4:  # absl::Base64Unescape (TF Serving) accepts missing padding.
            data += b"=" * (-len(data) % 4)
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise errors.invalid_argument(
            f"{where}: invalid base64 in {{\"b64\": ...}}: {e}; encode the bytes with "
            "standard base64 (A-Z, a-z, 0-9, +, /, = padding)."
        ) from e


def _string_leaf(value: Any, where: str) -> bytes:
    if type(value) is str:  # noqa: E721 - exact type is the fast path.
        return value.encode("utf-8")
    if isinstance(value, dict):
        return _decode_b64(value, where)
    raise errors.invalid_argument(
        f"{where} expects string values but got {_short(value)}; send JSON strings "
        'or {"b64": ...} objects.'
    )


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = orjson.dumps(value, option=_NUMPY, default=str).decode()
    except TypeError:  # Nested too deeply for orjson.
        text = f"a nested {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def _flatten(value: Any, where: str) -> tuple[tuple[int, ...], list]:
    """(shape, leaves in row-major order) of a nested list; checks it is not ragged."""
    shape: list[int] = []
    items = [value]
    while items and isinstance(items[0], list):
        n = len(items[0])
        for item in items:
            if not isinstance(item, list) or len(item) != n:
                lengths = sorted({len(x) if isinstance(x, list) else -1 for x in items})
                kinds = ", ".join("a value" if k < 0 else f"lists of {k}" for k in lengths)
                raise errors.invalid_argument(
                    f"{where} is a ragged list (at depth {len(shape) + 1}: {kinds}); all "
                    "rows must have the same shape."
                )
        shape.append(n)
        if len(shape) > MAX_DEPTH:
            raise _too_deep(where)
        items = [leaf for item in items for leaf in item]
    if any(isinstance(item, list) for item in items):
        raise errors.invalid_argument(
            f"{where} is a ragged list (at depth {len(shape) + 1}: lists and values); all "
            "rows must have the same shape.")
    return tuple(shape), items


def _string_array(value: Any, where: str) -> np.ndarray:
    shape, leaves = _flatten(value, where)
    array = np.empty(len(leaves), dtype=object)
    array[:] = [_string_leaf(v, where) for v in leaves]
    return array.reshape(shape)


def _numeric_error(raw: np.ndarray, value: Any, spec: TensorSpecInfo, where: str):
    flat = raw.reshape(-1)
    if raw.dtype.kind == "O":
        bad = [v for v in flat if isinstance(v, (bool, np.bool_)) or not isinstance(
            v, (int, float))]
        sample = bad[0] if bad else flat[0]
    else:
        sample = flat[0].item() if flat.size else value
    return errors.invalid_argument(
        f"{where} expects {spec.dtype.name} values but got {_short(sample)} "
        f"(JSON {_json_type(sample)}); send numbers of type {spec.dtype.name}."
    )


def _json_type(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    return {str: "str", dict: "dict", list: "list", type(None): "null"}.get(
        type(value), type(value).__name__)


def to_array(value: Any, spec: TensorSpecInfo, where: str) -> np.ndarray:
    """Converts a JSON value into an array of the signature's dtype.

    Numbers follow TF Serving's rules: a float input takes any JSON number,
    an integer input only integers that fit its dtype, a bool input only
    ``true``/``false``.
    """
    if isinstance(value, NumericArray):
        raw = value.array
        if spec.dtype == tf.string:
            raise errors.invalid_argument(
                f"{where} expects string values but got {_short(raw.reshape(-1)[0].item())}; "
                'send JSON strings or {"b64": ...} objects.')
    elif spec.dtype == tf.string:
        return _string_array(value, where)
    else:
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError, RecursionError):
            _flatten(value, where)  # Raises the ragged / too-deep message.
            raise errors.invalid_argument(f"{where} could not be read as a tensor.") from None
    want = np.dtype(spec.dtype.as_numpy_dtype)
    if raw.size == 0:
        return raw.astype(want)
    kind = raw.dtype.kind
    if want.kind == "b":
        ok = kind == "b"
    elif want.kind in "iu":
        ok = kind in "iu"
    else:
        ok = kind in "iuf"
    if not ok:
        raise _numeric_error(raw, value, spec, where)
    if want.kind in "iu" and raw.dtype != want:
        info = np.iinfo(want)
        low, high = raw.min(), raw.max()
        if low < info.min or high > info.max:
            raise errors.invalid_argument(
                f"{where} expects {spec.dtype.name} values but got "
                f"{low if low < info.min else high}, outside [{info.min}, {info.max}]."
            )
    return raw.astype(want, copy=False)


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
        if isinstance(rows, NumericArray):
            named = False
        elif not isinstance(rows, list) or not rows:
            raise errors.invalid_argument(
                "'instances' must be a non-empty JSON list with one entry per example.")
        else:
            named = all(isinstance(r, dict) and B64 not in r for r in rows)
        if named:
            wanted = set(names)
            for i, row in enumerate(rows):
                if row.keys() != wanted:
                    raise errors.invalid_argument(
                        f"instances[{i}] has keys {sorted(row)}; signature {spec.key!r} "
                        f"expects exactly {names}."
                    )
            columns = {name: [row[name] for row in rows] for name in names}
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


# --- Responses -------------------------------------------------------------------------------

def dumps(value: Any) -> bytes:
    """Compact JSON of ``value``; numpy arrays and scalars are written natively."""
    return orjson.dumps(value, option=_NUMPY, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _string_value(name: str, array: np.ndarray) -> Any:
    flat = array.reshape(-1).tolist()
    if array.dtype.kind == "U":
        items = flat
    elif name.endswith(BYTES_SUFFIX):
        items = [{B64: base64.b64encode(b).decode("ascii")} for b in flat]
    else:
        try:
            items = [b.decode("utf-8") for b in flat]
        except UnicodeDecodeError:
            items = [_utf8_or_b64(b) for b in flat]
    if array.ndim == 0:
        return items[0]
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(array.shape).tolist()


def _utf8_or_b64(item: bytes) -> Any:
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        return {B64: base64.b64encode(item).decode("ascii")}


def _with_non_finite(array: np.ndarray) -> orjson.Fragment:
    """TF Serving writes NaN/Infinity/-Infinity tokens where orjson writes null."""
    if array.ndim == 0:
        value = float(array)
        return orjson.Fragment(_NON_FINITE[str(value)] if not math.isfinite(value)
                               else orjson.dumps(value))
    text = orjson.dumps(np.ascontiguousarray(array), option=_NUMPY)
    parts = text.split(b"null")
    tokens = [_NON_FINITE[str(v)] for v in array[~np.isfinite(array)].astype(np.float64)]
    out = [parts[0]]
    for token, part in zip(tokens, parts[1:]):
        out += (token, part)
    return orjson.Fragment(b"".join(out))


def _output_value(name: str, array: np.ndarray) -> Any:
    """An orjson-writable value for one output (whole tensor)."""
    if array.dtype.kind in "OSU":
        return _string_value(name, array)
    if array.dtype not in _NATIVE:
        if array.dtype.kind == "c":
            raise errors.invalid_argument(
                f"Output {name!r} is {array.dtype.name}, which JSON cannot carry; "
                "use gRPC for complex outputs.")
        array = array.astype(np.float32 if array.dtype.kind not in "iu" else np.int64)  # bfloat16
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        return _with_non_finite(array)
    if array.ndim == 0:
        return array[()]
    return np.ascontiguousarray(array)


def _output_rows(name: str, array: np.ndarray) -> Any:
    """Something whose item ``i`` is an orjson-writable value for row ``i``."""
    if array.dtype.kind in "OSU":
        return _string_value(name, array)
    if array.dtype in _NATIVE and (array.dtype.kind != "f" or np.isfinite(array).all()):
        return np.ascontiguousarray(array)  # Rows are numpy scalars or contiguous views.
    return [_output_value(name, row) for row in array]


def predict_response(outputs: dict[str, np.ndarray], *, row_format: bool) -> dict:
    """``{"predictions": [...]}`` (row) or ``{"outputs": ...}`` (columnar).

    The values are numpy arrays/scalars and ``orjson.Fragment``s; write the
    result with ``dumps``.
    """
    if not row_format:
        if len(outputs) == 1:
            (name, value), = outputs.items()
            return {"outputs": _output_value(name, value)}
        return {"outputs": {k: _output_value(k, v) for k, v in outputs.items()}}
    sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise errors.invalid_argument(
            "The row format needs every output to have the same batch size; got shapes "
            + ", ".join(f"{k}: {list(v.shape)}" for k, v in outputs.items())
            + ". Use the columnar format ('inputs') instead."
        )
    if len(outputs) == 1:
        (name, value), = outputs.items()
        return {"predictions": _output_value(name, value)}
    columns = {k: _output_rows(k, v) for k, v in outputs.items()}
    n = sizes.pop()
    return {"predictions": [{k: col[i] for k, col in columns.items()} for i in range(n)]}


# --- Classify and Regress --------------------------------------------------------------------

def _feature(value: Any, where: str) -> feature_pb2.Feature:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise errors.invalid_argument(f"{where} is an empty list; give at least one value.")
    if all(isinstance(v, bool) for v in values) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        if any(not -(1 << 63) <= v < (1 << 63) for v in values):
            raise errors.invalid_argument(f"{where} has an integer outside int64.")
        return feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=[int(v) for v in values]))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return feature_pb2.Feature(float_list=feature_pb2.FloatList(value=values))
    if all(isinstance(v, (str, dict)) for v in values):
        return feature_pb2.Feature(bytes_list=feature_pb2.BytesList(
            value=[_string_leaf(v, where) for v in values]))
    raise errors.invalid_argument(
        f"{where} mixes value types {sorted({_json_type(v) for v in values})}; a feature "
        "holds only integers, only numbers, or only strings."
    )


def _example(value: Any, where: str) -> example_pb2.Example:
    if not isinstance(value, dict):
        raise errors.invalid_argument(
            f"{where} must be a JSON object of feature name to value(s); got "
            f"{_json_type(value)}."
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
    """``{"results": [[[label, score], ...], ...]}`` (scores as float32, like TF Serving)."""
    return {"results": [
        [[c.label, np.float32(c.score)] for c in classifications.classes]
        for classifications in response.result.classifications
    ]}


def regress_response(response) -> dict:
    """``{"results": [value, ...]}`` (values as float32, like TF Serving)."""
    values = np.array([r.value for r in response.result.regressions], dtype=np.float32)
    return {"results": _output_value("outputs", values)}


# --- Status and metadata, printed as TF Serving prints them ----------------------------------

def _ordered(value: Any, descriptor) -> Any:
    """Reorders ``MessageToDict`` output like protobuf's C++ printer.

    Fields outside a oneof come first in field-number order, then oneof
    members; map entries are sorted by key.
    """
    if not isinstance(value, dict) or descriptor is None:
        return value
    if descriptor.GetOptions().map_entry:
        raise AssertionError("map entries are handled by their field")
    fields = sorted(descriptor.fields, key=lambda f: (f.containing_oneof is not None, f.number))
    out = {}
    for field in fields:
        for key in (field.name, field.json_name):
            if key in value:
                out[key] = _field_value(value[key], field)
                break
    for key, item in value.items():  # Anything not in the descriptor (e.g. Any's @type).
        out.setdefault(key, item)
    return out


def _field_value(value: Any, field) -> Any:
    message = field.message_type
    if message is None:
        return value
    if message.GetOptions().map_entry:
        value_field = message.fields_by_name["value"]
        return {k: _field_value(value[k], value_field) for k in sorted(value)}
    if field.label == field.LABEL_REPEATED:
        return [_ordered(v, message) for v in value]
    return _ordered(value, message)


def proto_json(message, *, preserve_names: bool) -> str:
    """``MessageToJsonString`` as TF Serving calls it from C++.

    ``add_whitespace`` (one-space indent, a trailing newline) and
    ``always_print_fields_with_no_presence``; proto field names when
    ``preserve_names``, else the fields' JSON names.
    """
    value = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True,
        preserving_proto_field_name=preserve_names)
    return json.dumps(_ordered(value, message.DESCRIPTOR), indent=1, ensure_ascii=False) + "\n"


def status_json(response) -> bytes:
    """A GetModelStatusResponse as TF Serving's REST API prints it."""
    return proto_json(response, preserve_names=False).encode("utf-8")


def metadata_json(response: get_model_metadata_pb2.GetModelMetadataResponse,
                  field: str = "signature_def") -> bytes:
    """A GetModelMetadataResponse as TF Serving's REST API prints it.

    TF Serving prints ``model_spec`` and the unpacked ``SignatureDefMap``
    separately (so no ``@type``) and joins them into
    ``{"model_spec": ..., "metadata": {"signature_def": ...}}``.
    """
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    if field not in response.metadata or not response.metadata[field].Unpack(signature_map):
        raise errors.ServingError(
            grpc.StatusCode.INTERNAL,
            f"Failed to find {field!r} in the GetModelMetadataResponse metadata map.")
    model_spec = proto_json(response.model_spec, preserve_names=True)
    signatures = proto_json(signature_map, preserve_names=True)
    return (f'{{\n"model_spec":{model_spec},\n"metadata": {{"{field}": {signatures}}}\n}}\n'
            .encode("utf-8"))
