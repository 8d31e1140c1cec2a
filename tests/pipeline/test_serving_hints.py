"""What `python -m pipeline run` prints after a push (or, for a cached Pusher, about the served version)."""

import pytest

from components.artifacts import PushedModel
from pipeline.serving_hints import serving_hints


def _outputs(destination):
    pushed = PushedModel(uri="/unused", properties={"pushed": True, "pushed_destination": destination,
                                                    "version": 7, "model_id": 3})
    return {"Pusher": {"pushed_model": pushed}}


def test_a_cached_pusher_whose_version_is_gone_gives_no_hints(tmp_path):
    gone = str(tmp_path / "serving" / "taxi" / "7")
    assert serving_hints(_outputs(gone), root=str(tmp_path), executed=["Trainer"]) == []
    with pytest.raises(OSError):  # the CLI turns this into a warning line
        serving_hints(_outputs(gone), root=str(tmp_path), executed=["Pusher"])


def test_hints_for_a_pusher_that_ran(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    version = tmp_path / "serving" / "taxi" / "7"
    version.mkdir(parents=True)
    proto = saved_model_pb2.SavedModel()
    proto.meta_graphs.add().signature_def["serving_default"].method_name = "tensorflow/serving/regress"
    (version / "saved_model.pb").write_bytes(proto.SerializeToString())
    [hints] = serving_hints(_outputs(str(version)), root=str(tmp_path), executed=["Pusher"])
    assert (hints.model_name, hints.version, hints.method) == ("taxi", 7, "regress")
    lines = "\n".join(hints.lines())
    assert lines.startswith("Pushed taxi version 7")
    assert f"--model_base_path={tmp_path / 'serving' / 'taxi'}" in lines
    assert "serving.client regress --server 127.0.0.1:8500 --model taxi" in lines
    [cached] = serving_hints(_outputs(str(version)), root=str(tmp_path), executed=["Trainer"])
    assert "\n".join(cached.lines()).startswith("Nothing new to push: taxi version 7")


def test_printed_interpreter_is_the_one_running(tmp_path, monkeypatch):
    import sys

    from pipeline.serving_hints import this_python

    venv_python = tmp_path / "proj" / ".venv" / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(venv_python))
    assert this_python(str(tmp_path / "proj")) == ".venv/bin/python"
    assert this_python(str(tmp_path / "elsewhere")) == str(venv_python)
    monkeypatch.setattr(sys, "executable", "/usr/local/bin/python3.11")
    assert this_python(str(tmp_path)) == "/usr/local/bin/python3.11"
