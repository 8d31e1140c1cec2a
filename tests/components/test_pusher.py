"""Pusher: pushes only blessed models, atomically, with increasing versions, keeping N."""

from __future__ import annotations

import dataclasses
import os

import pytest

from components.artifacts import InfraBlessing, Model, ModelBlessing
from components.base import Component
from components.pusher import Pusher, PusherParameters
from components.pusher.executor import existing_versions, next_version
from tests.components.helpers import execute


@dataclasses.dataclass(frozen=True)
class NoParams:
    pass


class Source(Component):
    OUTPUTS = {"model": Model, "model_blessing": ModelBlessing, "infra_blessing": InfraBlessing}
    PARAMETERS = NoParams

    def __init__(self):
        super().__init__(inputs={}, parameters=NoParams())


SOURCE = Source()


def fake_model(tmp_path, name="m", marker="weights-1"):
    uri = tmp_path / name
    (uri / "Format-Serving" / "17" / "variables").mkdir(parents=True)
    (uri / "Format-Serving" / "17" / "saved_model.pb").write_text(marker)
    return Model(uri=str(uri), properties={"serving_model": "Format-Serving/17"}, id=1)


def pusher(dest, *, blessing=True, infra=False, **kwargs):
    return Pusher(SOURCE.outputs["model"], push_destination=str(dest), model_name="taxi",
                  model_blessing=SOURCE.outputs["model_blessing"] if blessing else None,
                  infra_blessing=SOURCE.outputs["infra_blessing"] if infra else None, **kwargs)


def test_blessed_model_is_pushed_with_increasing_versions_and_old_ones_removed(tmp_path):
    dest = tmp_path / "serving"
    component = pusher(dest, version_policy="increment", versions_to_keep=2)
    blessed = ModelBlessing(properties={"blessed": True}, id=2)
    for i in range(1, 4):
        model = fake_model(tmp_path, f"m{i}", marker=f"weights-{i}")
        out = execute(component, tmp_path / "run", {"model": model, "model_blessing": blessed})["pushed_model"]
        assert out.properties["pushed"] is True
        assert out.properties["version"] == i
        assert open(os.path.join(out.properties["pushed_destination"], "saved_model.pb")).read() == f"weights-{i}"
    assert existing_versions(str(dest / "taxi")) == [2, 3]
    assert out.properties["removed_versions"] == [1]
    assert sorted(os.listdir(dest / "taxi")) == ["2", "3"]  # no temporary directory left behind


def test_unblessed_model_leaves_the_served_version_untouched_and_says_why(tmp_path):
    dest = tmp_path / "serving"
    (dest / "taxi" / "5").mkdir(parents=True)
    (dest / "taxi" / "5" / "saved_model.pb").write_text("served")
    not_blessed = ModelBlessing(properties={"blessed": False, "reason": "auc 0.41 < 0.6"}, id=7)
    out = execute(pusher(dest), tmp_path / "run",
                  {"model": fake_model(tmp_path), "model_blessing": not_blessed})["pushed_model"]
    assert out.properties["pushed"] is False
    assert "model_blessing 7 is not blessed: auc 0.41 < 0.6" in out.properties["reason"]
    assert os.listdir(dest / "taxi") == ["5"]
    assert (dest / "taxi" / "5" / "saved_model.pb").read_text() == "served"


def test_infra_blessing_failure_blocks_the_push(tmp_path):
    dest = tmp_path / "serving"
    out = execute(pusher(dest, infra=True), tmp_path / "run", {
        "model": fake_model(tmp_path), "model_blessing": ModelBlessing(properties={"blessed": True}, id=2),
        "infra_blessing": InfraBlessing(properties={"blessed": False, "reason": "load failed"}, id=3),
    })["pushed_model"]
    assert out.properties["pushed"] is False
    assert "infra_blessing 3 is not blessed: load failed" in out.properties["reason"]
    assert not dest.exists()


def test_without_blessings_the_model_is_pushed_with_a_timestamp_version(tmp_path):
    dest = tmp_path / "serving"
    out = execute(pusher(dest, blessing=False), tmp_path / "run", {"model": fake_model(tmp_path)})
    version = out["pushed_model"].properties["version"]
    assert version > 1_600_000_000
    assert existing_versions(str(dest / "taxi")) == [version]


def test_next_version_is_always_greater_than_the_existing_ones():
    assert next_version([], "increment") == 1
    assert next_version([3, 9], "increment") == 10
    assert next_version([], "timestamp", now=1000.5) == 1000
    assert next_version([5000], "timestamp", now=1000.5) == 5001


@pytest.mark.parametrize("kwargs, message", [
    ({"push_destination": ""}, "Pusher got push_destination=''; expected a directory path"),
    ({"model_name": "a/b"}, "Pusher got model_name='a/b'; expected a plain directory name"),
    ({"versions_to_keep": 0}, "Pusher got versions_to_keep=0; expected an int >= 1"),
    ({"version_policy": "semver"}, "Pusher got version_policy='semver'; expected one of"),
])
def test_parameter_errors(kwargs, message):
    values = {"push_destination": "/srv", "model_name": "taxi", **kwargs}
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        PusherParameters(**values)


def test_model_without_a_serving_model_is_an_error(tmp_path):
    from components.base import ComponentError

    with pytest.raises(ComponentError, match="expected a 'serving_model' entry"):
        execute(pusher(tmp_path / "serving", blessing=False), tmp_path / "run",
                {"model": Model(uri=str(tmp_path), properties={}, id=1)})


def test_push_to_a_filesystem_url_writes_saved_model_pb_last_and_a_partial_copy_is_no_version(tmp_path, monkeypatch):
    # TensorFlow's in-memory filesystem (ram://) stands in for an object store: a URL that
    # tf.io.gfile serves and os cannot. TF Serving loads a version once saved_model.pb exists, so
    # on a URL that file must be the last one copied.
    import uuid

    import tensorflow as tf

    from components import fileio
    from components.pusher.executor import SAVED_MODEL_PB, remove_stale_staging
    from components.resolver import LatestPushedModelResolver

    module = tf.Module()
    module.v = tf.Variable(3.0)
    module.f = tf.function(lambda x: x * module.v, input_signature=[tf.TensorSpec([], tf.float32)])
    uri = tmp_path / "m"
    tf.saved_model.save(module, str(uri / "Format-Serving" / "17"))
    model = Model(uri=str(uri), properties={"serving_model": "Format-Serving/17"}, id=1)
    dest = f"ram://push-test-{uuid.uuid4().hex}/serving"
    copied = []
    real_copy = fileio.copy_file
    monkeypatch.setattr(fileio, "copy_file", lambda src, dst: (copied.append(dst), real_copy(src, dst)))
    component = pusher(dest, version_policy="increment", versions_to_keep=1)
    blessed = ModelBlessing(properties={"blessed": True}, id=2)
    for expected_version in (1, 2):
        out = execute(component, tmp_path / "run", {"model": model, "model_blessing": blessed})["pushed_model"]
        final = out.properties["pushed_destination"]
        assert out.properties["version"] == expected_version and final == f"{dest}/taxi/{expected_version}"
        model = Model(uri=str(uri), properties={"serving_model": "Format-Serving/17"}, id=expected_version + 1)
    assert copied[-1] == f"{dest}/taxi/2/{SAVED_MODEL_PB}" and len(copied) > 3
    assert existing_versions(f"{dest}/taxi") == [2]  # versions_to_keep=1 removed version 1
    assert float(tf.saved_model.load(final).f(tf.constant(2.0))) == 6.0  # a loader reads it from the URL

    # A copy that died before saved_model.pb: not a version, and removed once stale.
    fileio.makedirs(f"{dest}/taxi/9/variables")
    assert existing_versions(f"{dest}/taxi", complete_only=True) == [2]
    assert remove_stale_staging(f"{dest}/taxi") == []  # fresh: may still be copying
    assert remove_stale_staging(f"{dest}/taxi", now=4e9) == []  # no file yet: nothing says how old it is
    with fileio.open_file(f"{dest}/taxi/9/variables/part", "w") as f:
        f.write("x")
    assert remove_stale_staging(f"{dest}/taxi", now=4e9) == ["9"]
    assert existing_versions(f"{dest}/taxi") == [2]

    # The resolver reads the newest complete version back from the URL.
    resolved = execute(LatestPushedModelResolver(push_destination=dest, model_name="taxi"), tmp_path / "res")["model"]
    assert resolved.properties["pushed_version"] == 2 and resolved.properties["source"] == final
    fileio.rmtree(dest)
