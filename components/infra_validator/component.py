"""InfraValidator's spec: load the candidate in the project's model server and query it.

Example:
    >>> InfraValidatorParameters(num_examples=4).request_kinds
    ('classify', 'predict')
"""

from __future__ import annotations

import dataclasses

from components.artifacts import Examples, InfraBlessing, Model
from components.base import Channel, Component, InputSpec

REQUEST_KINDS = ("classify", "regress", "predict")


@dataclasses.dataclass(frozen=True)
class InfraValidatorParameters:
    """Attributes:
        split: Split of the raw examples the requests are built from.
        num_examples: Examples per request.
        request_kinds: Requests to send: ``classify`` (signature ``serving_default``),
            ``regress`` (``serving_default``) and/or ``predict`` (signature ``predict``,
            input ``examples``).
        model_name: Name the model is served under during the check.
    """

    split: str = "eval"
    num_examples: int = 8
    request_kinds: tuple[str, ...] = ("classify", "predict")
    model_name: str = "candidate"

    def __post_init__(self) -> None:
        if not isinstance(self.num_examples, int) or self.num_examples < 1:
            raise ValueError(
                f"InfraValidator got num_examples={self.num_examples!r}; expected an int >= 1. How "
                "to fix: pass the number of examples per request, e.g. 8.")
        object.__setattr__(self, "request_kinds", tuple(self.request_kinds))
        unknown = [k for k in self.request_kinds if k not in REQUEST_KINDS]
        if unknown or not self.request_kinds:
            raise ValueError(
                f"InfraValidator got request_kinds={self.request_kinds!r}; expected a non-empty "
                f"subset of {list(REQUEST_KINDS)}. How to fix: e.g. request_kinds=('classify',).")


class InfraValidator(Component):
    """Serves the model in ``serving.ModelServer`` on 127.0.0.1 and sends real requests.

    The InfraBlessing is ``blessed`` only if the model loads and every request succeeds;
    otherwise its ``reason`` says what failed. A failure does not stop the pipeline: the
    Pusher reads the blessing and skips the push.

    Args:
        model: The Trainer's Model.
        examples: Raw Examples (ExampleGen's output); requests are built from ``split``.
        split, num_examples, request_kinds, model_name: See InfraValidatorParameters.
        id: Node id (default "InfraValidator").
    """

    INPUTS = {"model": InputSpec(Model), "examples": InputSpec(Examples)}
    OUTPUTS = {"blessing": InfraBlessing}
    PARAMETERS = InfraValidatorParameters
    EXECUTOR = "components.infra_validator.executor:run"

    def __init__(self, model: Channel, examples: Channel, *, split: str = "eval", num_examples: int = 8,
                 request_kinds: tuple[str, ...] = ("classify", "predict"), model_name: str = "candidate",
                 id: str | None = None):
        super().__init__(inputs={"model": model, "examples": examples},
                         parameters=InfraValidatorParameters(split, num_examples, tuple(request_kinds),
                                                             model_name), id=id)
