"""Beam plumbing shared by executors: the user's beam_pipeline_args pass through unchanged.

Example:
    >>> options = pipeline_options(["--runner=FlinkRunner", "--flink_master=host:8081"])
    >>> options.get_all_options()["runner"]
    'FlinkRunner'
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
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


_LOG = logging.getLogger(__name__)
# Where Beam logs a DoFn's exception, with its traceback, before re-raising it.
BEAM_ERROR_LOGGERS = ("apache_beam.runners.common", "apache_beam.runners.worker.sdk_worker",
                      "apache_beam.runners.direct.executor")


def component_error_in(error: BaseException | None) -> BaseException | None:
    """The ComponentError in ``error``'s cause/context chain, or None."""
    from components.base import ComponentError

    while error is not None and not isinstance(error, ComponentError):
        error = error.__cause__ or error.__context__
    return error


class _DropComponentErrorTraceback(logging.Filter):
    """For a ComponentError the runner prints the one-line message, so Beam's traceback of it
    goes to DEBUG instead of the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        if component_error_in(record.exc_info[1] if record.exc_info else None) is None:
            return True
        _LOG.debug("Beam reported: %s", record.getMessage(), exc_info=record.exc_info)
        return False


@contextlib.contextmanager
def quiet_component_error_tracebacks() -> Iterator[None]:
    """While a Beam pipeline runs: Beam's logged traceback of a DoFn's ComponentError is dropped."""
    loggers = [logging.getLogger(name) for name in BEAM_ERROR_LOGGERS]
    log_filter = _DropComponentErrorTraceback()
    for logger in loggers:
        logger.addFilter(log_filter)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(log_filter)
