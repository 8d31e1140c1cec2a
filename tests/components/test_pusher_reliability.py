"""Pusher under crashes and races: a rerun after a kill never pushes twice, staging dirs are unique
and the ones left by killed pushes are removed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from components.artifacts import Model, ModelBlessing
from components.pusher import executor
from components.pusher.executor import PUSH_RECORD, TEMP_PREFIX, existing_versions, staging_name
from tests.components.helpers import execute
from tests.components.test_pusher import fake_model, pusher

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLESSED = ModelBlessing(properties={"blessed": True}, id=2)


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (not an Exception, so no handler catches it)."""


def test_a_rerun_after_a_kill_between_the_rename_and_the_metadata_reuses_the_pushed_version(tmp_path, monkeypatch):
    dest = tmp_path / "serving"
    model = fake_model(tmp_path)
    component = pusher(dest, version_policy="increment")
    real_push = executor.push

    def push_then_die(*args, **kwargs):
        real_push(*args, **kwargs)  # the version is in place: a server already sees it
        raise Killed

    monkeypatch.setattr(executor, "push", push_then_die)
    with pytest.raises(Killed):
        execute(component, tmp_path / "run1", {"model": model, "model_blessing": BLESSED})
    assert existing_versions(str(dest / "taxi")) == [1]

    monkeypatch.setattr(executor, "push", real_push)  # the rerun: same model, same destination
    out = execute(component, tmp_path / "run2", {"model": model, "model_blessing": BLESSED})["pushed_model"]
    assert existing_versions(str(dest / "taxi")) == [1]  # not pushed a second time
    assert out.properties["pushed"] is True and out.properties["version"] == 1
    assert out.properties["reused"] is True
    assert out.properties["pushed_destination"] == str(dest / "taxi" / "1")


def test_a_different_model_or_a_newer_version_in_between_is_pushed_anew(tmp_path):
    dest = tmp_path / "serving"
    component = pusher(dest, version_policy="increment")
    first, second = fake_model(tmp_path, "a", "weights-a"), fake_model(tmp_path, "b", "weights-b")
    second.id = 9
    run = lambda model, n: execute(component, tmp_path / f"run{n}",  # noqa: E731
                                   {"model": model, "model_blessing": BLESSED})["pushed_model"]
    assert run(first, 1).properties["version"] == 1
    assert run(second, 2).properties["version"] == 2
    # The first model again: version 2 (another model) is served now, so it is pushed as version 3.
    again = run(first, 3)
    assert again.properties["version"] == 3 and again.properties["reused"] is False
    assert (dest / "taxi" / "3" / "Format-Serving").exists() is False  # the SavedModel itself, not its parent
    assert (dest / "taxi" / "3" / "saved_model.pb").read_text() == "weights-a"


def test_the_push_record_sits_beside_the_saved_model_and_names_the_source(tmp_path):
    import json

    dest = tmp_path / "serving"
    model = fake_model(tmp_path)
    out = execute(pusher(dest, version_policy="increment"), tmp_path / "run",
                  {"model": model, "model_blessing": BLESSED})["pushed_model"]
    version_dir = dest / "taxi" / "1"
    assert sorted(os.listdir(version_dir)) == sorted(["saved_model.pb", "variables", PUSH_RECORD])
    record = json.loads((version_dir / PUSH_RECORD).read_text())
    assert record["model_id"] == model.id and record["model_uri"] == model.uri
    assert out.properties["reused"] is False


def test_staging_names_are_unique_even_in_the_same_second():
    a, b = staging_name(7), staging_name(7)
    assert a != b and a.startswith(TEMP_PREFIX + "7-") and b.startswith(TEMP_PREFIX + "7-")
    assert f"-{os.getpid()}-{socket.gethostname()}" in a


def test_a_version_taken_by_a_concurrent_push_is_not_overwritten(tmp_path, monkeypatch):
    """Two pushers that list the versions at the same moment pick the same number; the second one
    finds the version taken at the rename and takes the next number."""
    dest = tmp_path / "serving"
    (dest / "taxi" / "1").mkdir(parents=True)
    (dest / "taxi" / "1" / "saved_model.pb").write_text("the other pusher's model")
    real_existing = executor.existing_versions
    calls = []

    def stale_then_real(model_dir, complete_only=False):
        if complete_only:  # the listings that look for stale dirs and an earlier push of this model
            return real_existing(model_dir, complete_only=True)
        calls.append(model_dir)  # the listing that picks the next version number
        return [] if len(calls) == 1 else real_existing(model_dir)

    monkeypatch.setattr(executor, "existing_versions", stale_then_real)
    out = execute(pusher(dest, version_policy="increment"), tmp_path / "run",
                  {"model": fake_model(tmp_path), "model_blessing": BLESSED})["pushed_model"]
    assert out.properties["version"] == 2
    assert (dest / "taxi" / "1" / "saved_model.pb").read_text() == "the other pusher's model"
    assert sorted(os.listdir(dest / "taxi")) == ["1", "2"]


def test_stale_staging_dirs_are_removed_and_live_ones_kept(tmp_path):
    dest = tmp_path / "serving"
    model_dir = dest / "taxi"
    host = socket.gethostname()
    dead = model_dir / f"{TEMP_PREFIX}5-0123456789ab-{2**22 + 12345}-{host}"  # its process is gone
    live = model_dir / f"{TEMP_PREFIX}6-0123456789ab-{os.getppid()}-{host}"  # a live process copies
    elsewhere = model_dir / f"{TEMP_PREFIX}6-0123456789ab-17-another-host.example"  # fresh, on another host
    old_elsewhere = model_dir / f"{TEMP_PREFIX}4-0123456789ab-17-another-host.example"
    legacy = model_dir / f"{TEMP_PREFIX}3"  # older Pushers named it by the version only
    for path in (dead, live, elsewhere, old_elsewhere, legacy):
        (path / "variables").mkdir(parents=True)
    day_ago = time.time() - 2 * executor.STALE_STAGING_SECONDS
    for path in (old_elsewhere, legacy):
        os.utime(path, (day_ago, day_ago))
    execute(pusher(dest, version_policy="increment"), tmp_path / "run",
            {"model": fake_model(tmp_path), "model_blessing": BLESSED})
    assert sorted(os.listdir(model_dir)) == sorted(["1", live.name, elsewhere.name])


_CHILD = r"""
import os, shutil, signal, sys
sys.path.insert(0, {repo!r})
from components.artifacts import ModelBlessing
from tests.components.helpers import execute
from tests.components.test_pusher import fake_model, pusher
import pathlib

where = sys.argv[1]
tmp = pathlib.Path({tmp!r})
if where == "after_rename":
    real = os.rename
    def rename(a, b):
        real(a, b)
        if os.path.basename(b).isdigit():
            os.kill(os.getpid(), signal.SIGKILL)
    os.rename = rename
else:  # mid_copy: killed once the first directory is copied (copytree looks copystat up at each call)
    def copystat(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    shutil.copystat = copystat
execute(pusher(tmp / "serving", version_policy="increment"), tmp / "child_run",
        {{"model": fake_model(tmp, "m"), "model_blessing": ModelBlessing(properties={{"blessed": True}}, id=2)}})
"""


@pytest.mark.parametrize("where", ["after_rename", "mid_copy"])
def test_kill_9_in_a_push_then_rerun_leaves_one_version_and_no_staging_dir(tmp_path, where):
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(repo=REPO, tmp=str(tmp_path)), where],
                             cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL, out.decode()[-2000:]
    model_dir = tmp_path / "serving" / "taxi"
    if where == "after_rename":
        assert os.listdir(model_dir) == ["1"]
    else:
        assert [n for n in os.listdir(model_dir) if n.startswith(TEMP_PREFIX)] != []

    model = Model(uri=str(tmp_path / "m"), properties={"serving_model": "Format-Serving/17"}, id=1)  # the same
    out = execute(pusher(tmp_path / "serving", version_policy="increment"), tmp_path / "rerun",
                  {"model": model, "model_blessing": BLESSED})["pushed_model"]
    assert os.listdir(model_dir) == ["1"]
    assert out.properties["version"] == 1 and out.properties["reused"] is (where == "after_rename")
