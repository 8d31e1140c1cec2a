"""Beam plumbing shared by executors: the user's beam_pipeline_args pass through unchanged.

Example:
    >>> options = pipeline_options(["--runner=FlinkRunner", "--flink_master=host:8081"])
    >>> options.get_all_options()["runner"]
    'FlinkRunner'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def pipeline_options(beam_pipeline_args: Sequence[str]) -> Any:
    """PipelineOptions built from the args exactly as given (DirectRunner when none names a runner)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(list(beam_pipeline_args))


def make_pipeline(beam_pipeline_args: Sequence[str]) -> Any:
    """A ``beam.Pipeline`` for these args; use it as a context manager to run it."""
    import apache_beam as beam

    return beam.Pipeline(options=pipeline_options(beam_pipeline_args))


def runner_name(beam_pipeline_args: Sequence[str]) -> str:
    """The runner named in the args, for progress messages."""
    for arg in beam_pipeline_args:
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
    return "DirectRunner"
