"""Where a run's output goes.

Every component's full log is written to ``<root>/logs/<run id>/<node id>.log``: what the
Python loggers said (INFO and up) while it ran and, in *quiet* mode, everything the process
and its children wrote to stderr (TensorFlow's and absl's C++ start-up lines, Beam's and
TFMA's warnings, the Trainer's subprocess). Quiet mode is the CLI's default
(``python -m pipeline run``; ``--verbose`` turns it off): the terminal then shows only the
progress display, the run's outcome, and warnings of the project's own loggers
(``pipeline``, ``components``, ``trainer``). As a library (``LocalRunner()``), nothing is
redirected; the log files are still written.

Example:
    >>> log_path("/tmp/root", 3, "Trainer")
    '/tmp/root/logs/3/Trainer.log'
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import IO

LOGS_DIR = "logs"
# The project's own loggers: their warnings reach the terminal in quiet mode too.
OWN_LOGGERS = ("pipeline", "components", "trainer")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path(root: str, run_id: int, node_id: str) -> str:
    """The log file of ``node_id`` in run ``run_id`` under the pipeline ``root``."""
    return os.path.join(root, LOGS_DIR, str(run_id), f"{node_id}.log")


def quiet_environment() -> None:
    """Silences TensorFlow's and gRPC's C++ start-up chatter; call it before TensorFlow loads.

    Only defaults: a variable the user set is kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def terminal_stream() -> IO[str]:
    """A text stream on the process's stderr as it is now, unaffected by later redirection.

    The progress display writes here, so it stays on the terminal while a component's
    stderr goes to its log file.
    """
    sys.stderr.flush()
    return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")


class _OwnWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and record.name.split(".")[0] in OWN_LOGGERS


@contextlib.contextmanager
def component_log(path: str, *, quiet: bool, terminal: IO[str] | None = None) -> Iterator[str]:
    """Writes what happens inside the block to ``path``; yields ``path``.

    Args:
        path: The log file (its directory is created; appended to).
        quiet: Also send the process's stderr (file descriptor 2, inherited by
            subprocesses) to the file, so C++ and third-party output leaves the terminal.
        terminal: Where the project's own warnings still go in quiet mode (default: nowhere
            but the file).
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    if saved_level > logging.INFO:  # NOTSET (0) already passes everything
        root.setLevel(logging.INFO)
    own = []
    for name in OWN_LOGGERS:  # INFO of our own loggers reaches the file
        logger = logging.getLogger(name)
        own.append((logger, logger.level))
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    # Third-party handlers that write to stderr would duplicate into the file (quiet) or
    # flood the terminal with INFO (not quiet): they keep their WARNING threshold.
    raised = []
    for existing in list(root.handlers):
        if existing is not handler and existing.level < logging.WARNING and _writes_to_stderr(existing):
            raised.append((existing, existing.level))
            existing.setLevel(logging.WARNING)
    echo = None
    if quiet and terminal is not None:
        echo = logging.StreamHandler(terminal)
        echo.addFilter(_OwnWarnings())
        echo.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(echo)
    saved_fd = None
    if quiet:
        sys.stdout.flush()
        sys.stderr.flush()
        saved_fd = os.dup(2)
        with open(path, "ab") as target:
            os.dup2(target.fileno(), 2)
    try:
        yield path
    finally:
        if saved_fd is not None:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        if echo is not None:
            root.removeHandler(echo)
        for existing, level in raised:
            existing.setLevel(level)
        for logger, level in own:
            logger.setLevel(level)
        root.removeHandler(handler)
        root.setLevel(saved_level)
        handler.close()


def _writes_to_stderr(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return stream is sys.stderr
