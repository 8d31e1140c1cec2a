"""LatestPushedModelResolver: the newest pushed version, or an empty Model before the first push."""

from __future__ import annotations

import os

import pytest

from components.resolver import LatestPushedModelResolver
from tests.components.helpers import execute


def test_no_push_yet_gives_an_empty_model(tmp_path):
    out = execute(LatestPushedModelResolver(push_destination=str(tmp_path / "serving"), model_name="taxi"),
                  tmp_path / "run")["model"]
    assert out.properties["found"] is False
    assert "serving_model" not in out.properties


def test_newest_version_is_copied_and_new_pushes_change_the_cache_key(tmp_path):
    base = tmp_path / "serving" / "taxi"
    for version in (3, 12):
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / "saved_model.pb").write_text(f"v{version}")
    (base / ".tmp-13").mkdir()  # a push in progress is not a version
    resolver = LatestPushedModelResolver(push_destination=str(tmp_path / "serving"), model_name="taxi")
    before = resolver.fingerprint_extras()["versions"]
    out = execute(resolver, tmp_path / "run")["model"]
    assert out.properties["pushed_version"] == 12
    assert open(os.path.join(out.uri, out.properties["serving_model"], "saved_model.pb")).read() == "v12"
    (base / "13").mkdir()
    assert before == "3,12" and resolver.fingerprint_extras()["versions"] == "3,12,13"


def test_parameters_are_checked_like_the_pushers():
    with pytest.raises(ValueError, match="Pusher got model_name='a/b'"):
        LatestPushedModelResolver(push_destination="/srv", model_name="a/b")
