"""Each component's full log in <root>/logs/<run>/<node>.log; quiet mode keeps the terminal clean."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import subprocess
import sys

from components.artifacts import Examples
from components.base import Component
from pipeline.dsl import Pipeline
from pipeline.logs import log_path
from pipeline.runner import LocalRunner, PipelineRunError
from tests.pipeline.toy_components import Add, Source

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class ChattyParams:
    fail: bool = False


class Chatty(Component):
    """Writes to the process's stderr as C++ code would, and logs at several levels."""

    OUTPUTS = {"examples": Examples}
    PARAMETERS = ChattyParams

    def __init__(self, *, fail: bool = False, id: str | None = None):
        super().__init__(inputs={}, parameters=ChattyParams(fail), id=id)

    def executor(self):
        def run(ctx):
            os.write(2, b"I0000 native start-up chatter\n")
            child = subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('child says hi\\n')"],
                                   timeout=60)
            assert child.returncode == 0
            logging.getLogger("components.chatty").info("own info line")
            logging.getLogger("components.chatty").warning("own warning line")
            logging.getLogger("apache_beam.io").warning("third-party warning line")
            if ctx.parameters.fail:
                raise RuntimeError("chatty failed on purpose")
            ctx.outputs["examples"].properties.update(split_names=["train"])
        return run


def test_quiet_run_keeps_chatter_in_the_component_log(tmp_path, capfd):
    terminal = io.StringIO()
    pipeline = Pipeline("chatty", root=str(tmp_path), components=[Chatty()])
    result = LocalRunner(quiet=True, terminal=terminal).run(pipeline)
    with open(log_path(str(tmp_path), result.run_id, "Chatty")) as f:
        log = f.read()
    for line in ("native start-up chatter", "child says hi", "own info line", "own warning line",
                 "third-party warning line"):
        assert line in log, log
    err = capfd.readouterr().err
    assert "native start-up chatter" not in err and "child says hi" not in err, err
    # The project's own warnings still reach the terminal; third-party ones do not.
    assert "own warning line" in terminal.getvalue()
    assert "third-party" not in terminal.getvalue() and "own info line" not in terminal.getvalue()
    # stderr is back on the terminal after the run.
    os.write(2, b"after the run\n")
    assert "after the run" in capfd.readouterr().err


def test_logs_are_written_without_quiet_and_a_failure_names_its_log(tmp_path, capfd):
    source = Source(3)
    pipeline = Pipeline("chatty", root=str(tmp_path), components=[source, Add(source.outputs["examples"]),
                                                                  Chatty(fail=True)])
    try:
        LocalRunner().run(pipeline)
    except PipelineRunError as e:
        error = e
    else:
        raise AssertionError("the run should fail")
    assert error.log_path == log_path(str(tmp_path), 1, "Chatty")
    with open(error.log_path) as f:
        log = f.read()
    # Not quiet: native output stays on the terminal, the Python log still goes to the file.
    assert "own info line" in log and "own warning line" in log
    assert "native start-up chatter" in capfd.readouterr().err
    assert os.path.exists(log_path(str(tmp_path), 1, "Source"))


def test_cli_run_is_quiet_by_default_and_verbose_shows_everything(tmp_path):
    pipeline_file = tmp_path / "chatty_pipeline.py"
    pipeline_file.write_text(
        "from pipeline.dsl import Pipeline\n"
        "from tests.pipeline.test_logs import Chatty\n"
        "def create_pipeline(root):\n"
        "    return Pipeline('chatty', root=root, components=[Chatty()])\n")
    env = {**os.environ, "PYTHONPATH": REPO}
    quiet = subprocess.run([sys.executable, "-m", "pipeline", "run", str(pipeline_file), "--root",
                            str(tmp_path / "q")], capture_output=True, text=True, timeout=120,
                           cwd=REPO, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "native start-up chatter" not in quiet.stderr and "child says hi" not in quiet.stderr
    assert "own warning line" in quiet.stderr and "COMPLETE" in quiet.stderr
    verbose = subprocess.run([sys.executable, "-m", "pipeline", "run", str(pipeline_file), "--root",
                              str(tmp_path / "v"), "--verbose"], capture_output=True, text=True,
                             timeout=120, cwd=REPO, env=env)
    assert verbose.returncode == 0, verbose.stderr
    assert "native start-up chatter" in verbose.stderr and "child says hi" in verbose.stderr
