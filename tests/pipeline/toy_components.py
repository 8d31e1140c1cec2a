"""Small real components for runner tests: they write files, no Beam, no TF."""

from __future__ import annotations

import dataclasses
import os
import time

from components.artifacts import Examples, ExampleStatistics, Schema
from components.base import Component, ComponentError, InputSpec


@dataclasses.dataclass(frozen=True)
class SourceParams:
    value: int = 1
    span: int = 0
    sleep: float = 0.0


class Source(Component):
    OUTPUTS = {"examples": Examples}
    PARAMETERS = SourceParams

    def __init__(self, value: int = 1, *, span: int = 0, sleep: float = 0.0, id: str | None = None):
        super().__init__(inputs={}, parameters=SourceParams(value, span, sleep), id=id)

    def executor(self):
        def run(ctx):
            out = ctx.outputs["examples"]
            with open(os.path.join(out.uri, "value.txt"), "w") as f:
                f.write(str(ctx.parameters.value))
            time.sleep(ctx.parameters.sleep)
            out.properties.update(span=ctx.parameters.span, split_names=["train"])
        return run


@dataclasses.dataclass(frozen=True)
class AddParams:
    add: int = 0
    fail: bool = False


class Add(Component):
    """Reads every input artifact's value.txt, sums them plus ``add``."""

    INPUTS = {"examples": InputSpec(Examples), "baseline": InputSpec(Examples, optional=True)}
    OUTPUTS = {"statistics": ExampleStatistics}
    PARAMETERS = AddParams

    def __init__(self, examples, *, baseline=None, add: int = 0, fail: bool = False, id=None):
        super().__init__(inputs={"examples": examples, "baseline": baseline},
                         parameters=AddParams(add, fail), id=id)

    def executor(self):
        def run(ctx):
            if ctx.parameters.fail:
                raise ComponentError("Add got fail=True; expected False. How to fix: unset it.")
            total = ctx.parameters.add
            for art in ctx.inputs["examples"]:
                with open(os.path.join(art.uri, "value.txt")) as f:
                    total += int(f.read())
            out = ctx.outputs["statistics"]
            with open(os.path.join(out.uri, "value.txt"), "w") as f:
                f.write(str(total))
            out.properties.update(
                total=total, inputs=[a.id for a in ctx.inputs["examples"]],
                baseline=[a.id for a in ctx.inputs.get("baseline", [])])
        return run


@dataclasses.dataclass(frozen=True)
class NoParams:
    pass


class SchemaOf(Component):
    INPUTS = {"statistics": InputSpec(ExampleStatistics)}
    OUTPUTS = {"schema": Schema}
    PARAMETERS = NoParams

    def __init__(self, statistics, *, id=None):
        super().__init__(inputs={"statistics": statistics}, parameters=NoParams(), id=id)

    def executor(self):
        def run(ctx):
            with open(os.path.join(ctx.outputs["schema"].uri, "schema.pbtxt"), "w") as f:
                f.write("")
        return run


class Relay(Component):
    """Passes Examples through (used to build a cycle by hand)."""

    INPUTS = {"examples": InputSpec(Examples, optional=True)}
    OUTPUTS = {"examples": Examples}
    PARAMETERS = NoParams

    def __init__(self, examples=None, *, id=None):
        super().__init__(inputs={"examples": examples}, parameters=NoParams(), id=id)
