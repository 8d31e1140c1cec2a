"""`python -m pipeline run` says why a model was not pushed, and --require-push fails the run then."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

from components.artifacts import PushedModel
from components.base import Component

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class FakePushParams:
    pushed: bool = False


class FakePusher(Component):
    """Records a push outcome as the Pusher does, without a model."""

    OUTPUTS = {"pushed_model": PushedModel}
    PARAMETERS = FakePushParams

    def __init__(self, *, pushed: bool = False, id: str | None = None):
        super().__init__(inputs={}, parameters=FakePushParams(pushed), id=id)

    def executor(self):
        def run(ctx):
            out = ctx.outputs["pushed_model"]
            if ctx.parameters.pushed:
                out.properties.update(pushed=True, version=1, pushed_destination=out.uri)
            else:
                out.properties.update(pushed=False, reason="the model is not blessed: auc 0.41 < 0.9")
        return run


def _run(tmp_path, name, pushed, *extra):
    path = tmp_path / f"{name}.py"
    path.write_text(
        "from pipeline.dsl import Pipeline\n"
        "from tests.pipeline.test_cli_push import FakePusher\n"
        "def create_pipeline(root):\n"
        f"    return Pipeline('{name}', root=root, components=[FakePusher(pushed={pushed})])\n")
    return subprocess.run([sys.executable, "-m", "pipeline", "run", str(path), "--root", str(tmp_path / name),
                           *extra], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO})


def test_not_pushed_is_said_and_require_push_exits_3(tmp_path):
    plain = _run(tmp_path, "plain", False)
    assert plain.returncode == 0, plain.stderr
    assert "FakePusher: not pushed: the model is not blessed: auc 0.41 < 0.9" in plain.stderr
    required = _run(tmp_path, "required", False, "--require-push")
    assert required.returncode == 3, required.stderr
    assert "not pushed: the model is not blessed" in required.stderr
    ok = _run(tmp_path, "ok", True, "--require-push")
    assert ok.returncode == 0, ok.stderr
    assert "not pushed" not in ok.stderr
