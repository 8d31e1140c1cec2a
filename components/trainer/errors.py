"""One-line Trainer errors: the user's module, function and line, and TensorFlow's root cause.

A user module that fails used to surface as a bare Python error, and a failing training
step as TensorFlow's first line, ``InvalidArgumentError: Graph execution error:``, with the
real cause (an assertion, an op's message) many lines below it. These helpers turn both into
a `ComponentError` whose one line names what failed, where in the user's own code (file:line,
never TensorFlow's internals) and how to fix it.

Example:
    >>> op_error_cause("Graph execution error:\\n\\nDetected at node x defined at (most recent "
    ...                "call last):\\n  File \\"a.py\\", line 3, in f\\n\\nassertion failed: "
    ...                "[labels must be in [0, 2); first bad label:] [2]\\n\\t [[{{node x}}]]")
    'labels must be in [0, 2); first bad label: 2'
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from components.base import ComponentError

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)')
_NODE = re.compile(r"^\s*\[\[\{\{node [^}]*\}\}\]\]")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\]( name: \S*)?\s*$")
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_ROOT_ERRORS = re.compile(r"^\s*(\d+ root error\(s\) found\.|\(\d+\) [A-Z_]+:\s*)")
_SPARSE_LABEL = re.compile(
    r"Received a label value of (?P<value>-?\d+) which is outside the valid range of "
    r"\[0, (?P<n>\d+)\)")
_ASSERT = re.compile(r"assertion failed: (?P<parts>.*)$")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def user_frame(error: BaseException, module_file: str | None) -> str | None:
    """``file:line in function`` of the innermost traceback frame in ``module_file``, or None.

    Looks at the Python traceback of ``error`` and its causes, then at the "defined at"
    traceback TensorFlow writes into an op error's message (where a model_fn built the op).
    """
    if not module_file:
        return None
    seen: BaseException | None = error
    while seen is not None:
        frames = [f for f in traceback.extract_tb(seen.__traceback__) if _same_file(f.filename, module_file)]
        if frames:
            f = frames[-1]
            return f"{f.filename}:{f.lineno} in {f.name}"
        seen = seen.__cause__ or seen.__context__
    found = None
    for line in str(getattr(error, "message", None) or error).splitlines():
        match = _FRAME.match(line)
        if match and _same_file(match["file"], module_file):
            found = f"{match['file']}:{match['line']} in {match['fn']}"
    return found


def _assertion(parts: str) -> str:
    """``[a] [b] [c]`` (tf.debugging.Assert's data, each printed in brackets) as ``a b c``.

    A string item may hold brackets itself ("in [0, 2)"), so items are split at "] [" only.
    """
    text = parts.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return text
    pieces = [p.strip() for p in text[1:-1].split("] [")]
    return " ".join(p for p in pieces if p)


def op_error_cause(message: str) -> str:
    """The useful line of a TensorFlow op error's message (tf.errors.OpError.message).

    Drops the "Graph execution error:" header, the "Detected at node ... defined at" Python
    traceback, the ``[[{{node ...}}]]`` and ``[Op:...]`` trailers; turns an Assert's
    bracketed data into a sentence, and the sparse cross-entropy's "Received a label value of
    2 which is outside the valid range of [0, 2)" into "labels must be integer class ids in
    [0, 2); first bad label: 2".
    """
    sparse = _SPARSE_LABEL.search(message)
    if sparse:
        return (f"labels must be integer class ids in [0, {sparse['n']}); first bad label: {sparse['value']} "
                "(the sparse softmax cross-entropy's label check)")
    kept = []
    in_traceback = False
    for raw in message.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            in_traceback = False
            continue
        if stripped.startswith("Detected at node") or stripped.startswith("Detected unsupported"):
            in_traceback = True
            continue
        if stripped in ("Graph execution error:", "Traceback (most recent call last):", "in user code:"):
            continue
        if _FRAME.match(line):
            in_traceback = True
            continue
        if in_traceback and raw[:1] in (" ", "\t"):
            continue  # the source line under a File line
        in_traceback = False
        if _NODE.match(line) or stripped.startswith("[[{{node") or stripped.startswith("Additional GRPC"):
            continue
        line = _FUNCTION_NODE.sub("", _ROOT_ERRORS.sub("", stripped))
        line = _OP_SUFFIX.sub("", line).strip()
        if not line or line.endswith("root error(s) found."):
            continue
        assertion = _ASSERT.search(line)
        if assertion:
            line = _assertion(assertion["parts"])
        if line not in kept:
            kept.append(line)
    if not kept:
        return message.strip().splitlines()[0] if message.strip() else "no message"
    return kept[0]


def describe(error: BaseException) -> str:
    """``Type: message`` in one line; an op error's root cause instead of its first line."""
    import tensorflow as tf

    name = type(error).__name__
    if isinstance(error, tf.errors.OpError):
        return f"{name}: {op_error_cause(error.message)}"
    text = str(error)
    if text.lstrip().startswith("in user code:"):  # a tf.function trace's error, with autograph's traceback
        cause = op_error_cause(text)
        return f"{name}: {cause[len(name) + 2:] if cause.startswith(name + ': ') else cause}"
    text = " ".join(text.split())
    return f"{name}: {text}" if text else name


def call_user_fn(fn: Callable[..., Any], args: Sequence[Any], *, module_file: str, name: str,
                 call: str, fix: str) -> Any:
    """Calls a user module's function; any error becomes a one-line `ComponentError`.

    Args:
        fn: The user's function.
        args: Its positional arguments.
        module_file: The module's path (named in the message; its frames are located).
        name: The function's name.
        call: How it was called, e.g. ``trainer_fn(fn_args, schema)``.
        fix: What to change, for the message's "How to fix".
    """
    try:
        return fn(*args)
    except ComponentError:
        raise
    except Exception as e:  # noqa: BLE001 - any error in user code is reported the same way
        where = user_frame(e, module_file)
        at = f" at {where}" if where else ""
        raise ComponentError(
            f"Trainer: {call} in {module_file} raised {describe(e)}{at}. How to fix: {fix}") from e


def training_error(error: BaseException, *, what: str, module_file: str | None, label: str | None) -> ComponentError:
    """A `ComponentError` for a failure while training/evaluating/exporting: the root cause first."""
    cause = describe(error)
    where = user_frame(error, module_file)
    at = f" (at {where})" if where else ""
    if "label" in cause.lower() and label:
        fix = (f"check the values of label {label!r} against the head: class ids in [0, n_classes), "
               "label_vocabulary for string labels (see the Trainer's label check in docs/trainer_modules.md).")
    elif where:
        fix = f"correct the code at {where}."
    else:
        fix = "see the full traceback in the component's log."
    return ComponentError(f"Trainer failed while {what}: {cause}{at}. How to fix: {fix}")
