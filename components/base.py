"""The component contract: a typed spec (inputs, outputs, parameters) plus an executor.

A component class declares ``INPUTS`` (name -> InputSpec), ``OUTPUTS``
(name -> artifact class) and ``PARAMETERS`` (a frozen dataclass). Instances are
wired by passing another component's output ``Channel`` as an input. The
executor is a plain function ``run(ctx: ExecutionContext) -> None`` imported
lazily, so building a pipeline never imports TensorFlow or Beam.

Example:
    >>> from components.artifacts import Examples
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class NoParams:
    ...     pass
    >>> class Source(Component):
    ...     OUTPUTS = {"examples": Examples}
    ...     PARAMETERS = NoParams
    ...     def __init__(self, *, id=None):
    ...         super().__init__(inputs={}, parameters=NoParams(), id=id)
    >>> Source().outputs["examples"].artifact_type.TYPE_NAME
    'Examples'
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from components.artifacts import Artifact

CURRENT = "current"
PREVIOUS_SPAN = "previous_span"
SPAN_WINDOW = "span_window"
PREVIOUS_OUTPUT = "previous_output"


class ComponentError(RuntimeError):
    """A component failed for a reason the user can fix (bad data, anomalies)."""


class DataError(ComponentError, ValueError):
    """Bad input data; the message names the file, row and column."""

    def __init__(self, path: str, row: int | None, column: str | None, problem: str, fix: str = ""):
        where = path
        if row is not None:
            where += f" row {row}"
        if column is not None:
            where += f" column {column!r}"
        message = f"{where}: {problem}"
        if fix:
            message += f" How to fix: {fix}"
        super().__init__(message)
        self.path, self.row, self.column, self.problem = path, row, column, problem


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One declared input: its artifact class, and whether it may be left out."""

    artifact_type: type[Artifact]
    optional: bool = False


class Channel:
    """A typed reference to one output of one component, with a resolution policy.

    ``policy`` says which artifacts the runner hands to the consumer:
    ``current`` (what the producer published in this run), ``previous_span``
    (the latest published artifact whose span is lower than the current one's,
    e.g. the baseline for drift) or ``span_window`` (the latest ``window`` spans,
    current included, newest first).
    """

    def __init__(self, artifact_type: type[Artifact], producer: Component, output_key: str,
                 *, policy: str = CURRENT, window: int = 1):
        self.artifact_type = artifact_type
        self.producer = producer
        self.output_key = output_key
        self.policy = policy
        self.window = window

    def previous_span(self) -> Channel:
        """This output's latest artifact from an earlier span (empty if none)."""
        return Channel(self.artifact_type, self.producer, self.output_key, policy=PREVIOUS_SPAN)

    def span_window(self, window: int) -> Channel:
        """This output's artifacts of the latest ``window`` spans, newest first."""
        if not isinstance(window, int) or window < 1:
            raise ValueError(
                f"Channel.span_window got window={window!r}; expected an int >= 1. "
                "How to fix: pass the number of spans to analyze, e.g. 2."
            )
        return Channel(self.artifact_type, self.producer, self.output_key,
                       policy=SPAN_WINDOW, window=window)

    def __repr__(self) -> str:
        return (f"Channel({self.artifact_type.TYPE_NAME} from "
                f"{self.producer.id}.{self.output_key}, policy={self.policy})")


@dataclasses.dataclass
class ExecutionContext:
    """Everything an executor gets: resolved inputs, output artifacts to fill, parameters.

    Output artifacts point at a temporary directory; the runner publishes them
    atomically after the executor returns. ``temp_dir`` belongs to this execution
    only. ``work_dir`` (None when the runner gives none) is resumable scratch:
    it survives a crash or a failure and is handed back to the next execution with
    the same fingerprint (same inputs, parameters and code), then removed once an
    execution is published. Keep there what lets a rerun resume (the Trainer's
    checkpoints); copy what the outputs need into them.
    """

    component_id: str
    execution_id: int
    inputs: Mapping[str, list[Artifact]]
    outputs: Mapping[str, Artifact]
    parameters: Any
    beam_pipeline_args: tuple[str, ...]
    temp_dir: str
    work_dir: str | None = None
    previous_output: Callable[[str], Artifact | None] = lambda key: None
    report: Callable[[str], None] = lambda message: None

    def input(self, key: str) -> Artifact:
        """The first (newest) artifact of input ``key``."""
        artifacts = self.inputs.get(key) or []
        if not artifacts:
            raise ComponentError(
                f"{self.component_id} got no artifact for input {key!r}. How to fix: "
                "wire that input, or run the producing component first."
            )
        return artifacts[0]


def parameters_to_json(parameters: Any) -> str:
    """Serializes a frozen parameter dataclass to canonical JSON."""
    if not dataclasses.is_dataclass(parameters):
        raise TypeError(
            f"parameters_to_json got parameters={parameters!r}; expected a dataclass "
            "instance. How to fix: declare the parameters as a frozen dataclass."
        )
    return json.dumps(_jsonable(parameters), sort_keys=True, default=str)


def _jsonable(value: Any) -> Any:
    """Dataclasses become dicts tagged with their class name (so two feature types with the
    same fields never share a cache key); mappings and sequences are converted recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__,
                **{f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def file_digest(path: str) -> str:
    """sha256 of a file's bytes (used to fingerprint user code)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Component:
    """Base class of all components. Subclasses declare the class attributes below.

    Attributes:
        INPUTS: name -> InputSpec.
        OUTPUTS: name -> artifact class.
        PARAMETERS: the frozen dataclass type of the parameters.
        EXECUTOR: ``"module:function"`` of the executor, imported lazily.
    """

    INPUTS: ClassVar[Mapping[str, InputSpec]] = {}
    OUTPUTS: ClassVar[Mapping[str, type[Artifact]]] = {}
    PARAMETERS: ClassVar[type] = type(None)
    EXECUTOR: ClassVar[str] = ""

    def __init__(self, *, inputs: Mapping[str, Channel | None], parameters: Any, id: str | None = None):
        name = type(self).__name__
        if not isinstance(parameters, self.PARAMETERS):
            raise TypeError(
                f"{name} got parameters={parameters!r}; expected a "
                f"{self.PARAMETERS.__name__}. How to fix: build the parameters with "
                f"{self.PARAMETERS.__name__}(...)."
            )
        for key in inputs:
            if key not in self.INPUTS:
                raise ValueError(
                    f"{name} got input {key}=...; expected one of {sorted(self.INPUTS)}. "
                    "How to fix: check the input name."
                )
        for key, spec in self.INPUTS.items():
            channel = inputs.get(key)
            if channel is None:
                if not spec.optional:
                    raise ValueError(
                        f"{name} got {key}=None; expected a Channel of "
                        f"{spec.artifact_type.TYPE_NAME}. How to fix: pass another "
                        f"component's output, e.g. {key}=producer.outputs[...]."
                    )
                continue
            check_channel_type(name, key, channel, spec.artifact_type)
        self.id = id or name
        self.inputs: dict[str, Channel] = {k: v for k, v in inputs.items() if v is not None}
        self.parameters = parameters
        self.outputs: dict[str, Channel] = {
            key: Channel(artifact_type, self, key) for key, artifact_type in self.OUTPUTS.items()
        }

    def with_id(self, id: str) -> Component:
        """Sets the node id (default: the class name) and returns self."""
        self.id = id
        return self

    @property
    def upstream(self) -> list[Component]:
        """The components whose outputs this one consumes."""
        return [channel.producer for channel in self.inputs.values()]

    def executor(self) -> Callable[[ExecutionContext], None]:
        """Imports and returns the executor function."""
        module_name, _, function = self.EXECUTOR.partition(":")
        return getattr(importlib.import_module(module_name), function)

    def fingerprint_extras(self) -> dict[str, str]:
        """Extra cache-key material: the component's own code, plus subclass additions.

        Subclasses add the digest of user module files or input data files.
        """
        extras = {"component_code": file_digest(inspect.getsourcefile(type(self)))}
        module_name = self.EXECUTOR.partition(":")[0]
        if module_name:
            spec = importlib.util.find_spec(module_name)
            if spec is not None and spec.origin:
                extras["executor_code"] = file_digest(spec.origin)
        return extras

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


def check_channel_type(component: str, key: str, channel: Any, expected: type[Artifact]) -> None:
    """Raises TypeError unless ``channel`` is a Channel of ``expected`` artifacts."""
    if not isinstance(channel, Channel):
        raise TypeError(
            f"{component} got {key}={channel!r}; expected a Channel of "
            f"{expected.TYPE_NAME}. How to fix: pass another component's output, "
            f"e.g. {key}=producer.outputs[...]."
        )
    if not issubclass(channel.artifact_type, expected):
        raise TypeError(
            f"{component} got {key}={channel!r}; expected a Channel of "
            f"{expected.TYPE_NAME}, not {channel.artifact_type.TYPE_NAME}. How to fix: "
            "wire the output of the right type."
        )


def as_tuple(value: Sequence[Any] | None) -> tuple[Any, ...]:
    """Normalizes a list argument to a tuple so parameters stay hashable and frozen."""
    return tuple(value) if value is not None else ()


def process_alive(pid: int | None) -> bool:
    """Whether a process with this pid runs on this host (one owned by another user counts)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
