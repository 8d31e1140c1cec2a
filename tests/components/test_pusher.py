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
