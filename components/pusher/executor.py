"""Pusher's executor: check the blessings, copy atomically and idempotently, keep the newest N versions.

A push copies the SavedModel to a staging directory, ``.tmp-<version>-<uuid>-<pid>-<host>``
(unique, so two pushes never share one; TF Serving ignores names that are not numbers),
writes a push record (`PUSH_RECORD`) into it and renames it to ``<version>``. The record
travels with the rename, so a version on disk always says which model it holds. A rerun
after a crash between the rename and the metadata update finds the newest version
holding the same model and reuses it instead of pushing a second copy.

Staging directories left by killed pushes are removed by the next push: at once when
their process (on this host) is gone, after `STALE_STAGING_SECONDS` otherwise.

The destination may be a filesystem URL (``gs://...``, any ``tf.io.gfile`` scheme; see
components/fileio.py), which TF Serving reads directly. An object store has no atomic
rename, so there the model is staged in a local temp dir (with its record) and copied into
``<version>/`` with ``saved_model.pb`` last: a server loads a SavedModel only once that file
exists, so it never loads a partial copy. A copy that died midway (a version directory
without ``saved_model.pb``) does not count as a version and is removed by a later push after
`STALE_STAGING_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid

from components import fileio
from components.base import ExecutionContext, process_alive
from components.trainer.model_paths import serving_model_path

TEMP_PREFIX = ".tmp-"
PUSH_RECORD = "push_record.json"
SAVED_MODEL_PB = "saved_model.pb"  # copied last to a URL destination: the version is complete once it exists
STALE_STAGING_SECONDS = 24 * 3600
_RENAME_ATTEMPTS = 5


def destination_dir(push_destination: str, model_name: str) -> str:
    """``<push_destination>/<model_name>``: absolute for a local path, as given for a URL."""
    if fileio.is_url(push_destination):
        return fileio.join(push_destination, model_name)
    return os.path.abspath(os.path.join(fileio.local_path(push_destination), model_name))


def existing_versions(model_dir: str, *, complete_only: bool = False) -> list[int]:
    """The integer version directories under ``model_dir``, ascending; with ``complete_only``, on a
    URL destination only those holding ``saved_model.pb`` (a local version is complete once renamed)."""
    versions = sorted(int(name) for name in fileio.listdir(model_dir)
                      if name.isdigit() and fileio.isdir(fileio.join(model_dir, name)))
    if complete_only and fileio.is_url(model_dir):
        versions = [v for v in versions if fileio.exists(fileio.join(model_dir, str(v), SAVED_MODEL_PB))]
    return versions


def next_version(existing: list[int], policy: str, *, now: float | None = None) -> int:
    """A version greater than every existing one: the timestamp, or the last one + 1."""
    last = existing[-1] if existing else 0
    if policy == "increment":
        return last + 1
    return max(int(time.time() if now is None else now), last + 1)


def why_not_blessed(ctx: ExecutionContext) -> str | None:
    """None when every given blessing is blessed, else the reason to skip the push."""
    for key in ("model_blessing", "infra_blessing"):
        for blessing in ctx.inputs.get(key) or []:
            if not blessing.properties.get("blessed"):
                reason = blessing.properties.get("reason", "no reason recorded")
                return f"{key} {blessing.id} is not blessed: {reason}"
    return None


def staging_name(version: int) -> str:
    """``.tmp-<version>-<uuid>-<pid>-<host>``: unique, and it says who is copying."""
    return f"{TEMP_PREFIX}{version}-{uuid.uuid4().hex[:12]}-{os.getpid()}-{socket.gethostname()}"


def remove_stale_staging(model_dir: str, *, now: float | None = None) -> list[str]:
    """Removes staging dirs of pushes that died; returns their names.

    A dir of this host is stale when its process is gone; one of another host (or of an
    older Pusher, named ``.tmp-<version>``) when untouched for `STALE_STAGING_SECONDS`. On a
    URL destination, a version directory without ``saved_model.pb`` (a copy that died) is
    stale after `STALE_STAGING_SECONDS`.
    """
    now = time.time() if now is None else now
    removed = []
    complete = set(existing_versions(model_dir, complete_only=True)) if fileio.is_url(model_dir) else set()
    for name in fileio.listdir(model_dir):
        path = fileio.join(model_dir, name)
        if name.isdigit() and fileio.is_url(model_dir):
            if int(name) in complete:
                continue
            stale = _untouched_for(path, now) > STALE_STAGING_SECONDS
        elif not name.startswith(TEMP_PREFIX):
            continue
        else:
            parts = name[len(TEMP_PREFIX):].split("-", 3)
            if len(parts) == 4 and parts[2].isdigit() and parts[3] == socket.gethostname():
                stale = int(parts[2]) != os.getpid() and not process_alive(int(parts[2]))
            else:
                stale = _untouched_for(path, now) > STALE_STAGING_SECONDS
        if stale:
            fileio.rmtree(path)
            removed.append(name)
    return removed


def _untouched_for(path: str, now: float) -> float:
    """Seconds since ``path`` changed: the directory's own time locally; on a URL (where a
    "directory" has no time of its own) the newest file in it. 0 when it is gone or holds no
    file, so a directory is never removed on no evidence."""
    try:
        if not fileio.is_url(path):
            return now - fileio.mtime(path)
        times = [fileio.mtime(fileio.join(directory, name))
                 for directory, _, names in fileio.walk(path) for name in names]
    except OSError:  # removed meanwhile
        return 0.0
    return now - max(times) if times else 0.0


def push_record(model, source: str) -> dict:
    """What identifies the pushed model: its artifact id and URI and its saved_model.pb's digest."""
    digest = hashlib.sha256()
    pb = fileio.join(source, SAVED_MODEL_PB)
    if fileio.isfile(pb):
        with fileio.open_file(pb, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return {"model_id": model.id, "model_uri": model.uri, "saved_model_sha256": digest.hexdigest()}


def _same_model(a: dict, b: dict) -> bool:
    keys = ("model_id", "model_uri", "saved_model_sha256")
    return all(a.get(k) == b.get(k) for k in keys)


def already_pushed(model_dir: str, record: dict) -> int | None:
    """The newest version if it holds the model ``record`` names (pushed by an earlier attempt), else None."""
    versions = existing_versions(model_dir, complete_only=True)
    if not versions:
        return None
    try:
        with fileio.open_file(fileio.join(model_dir, str(versions[-1]), PUSH_RECORD)) as f:
            found = json.load(f)
    except Exception:  # noqa: BLE001 - OSError, a bad record, or gfile's NotFoundError: not this model's
        return None
    return versions[-1] if isinstance(found, dict) and _same_model(found, record) else None


def push(source: str, model_dir: str, version: int, record: dict | None = None) -> str:
    """Copies ``source`` to ``model_dir/<version>`` through a unique staging sibling and a rename
    (on a URL destination: a local staging dir, then a copy with ``saved_model.pb`` last).

    ``record`` (written as `PUSH_RECORD` in the version) makes a rerun find the push.
    Raises OSError (EEXIST/ENOTEMPTY) when another push took that version meanwhile.
    """
    remote = fileio.is_url(model_dir)
    fileio.makedirs(model_dir)
    final = fileio.join(model_dir, str(version))
    temp = (os.path.join(tempfile.mkdtemp(prefix="push-"), str(version)) if remote
            else os.path.join(model_dir, staging_name(version)))
    try:
        fileio.copytree(source, temp)
        if record is not None:
            stamped = {**record, "version": version, "host": socket.gethostname(), "pid": os.getpid(),
                       "pushed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            with open(os.path.join(temp, PUSH_RECORD), "w", encoding="utf-8") as f:
                json.dump(stamped, f, indent=1, sort_keys=True)
        if fileio.exists(final):  # rename would replace an empty directory
            raise OSError(errno.EEXIST, "version already exists", final)
        if remote:
            fileio.copytree(temp, final, last=[SAVED_MODEL_PB])
        else:
            os.rename(temp, final)
    finally:
        shutil.rmtree(os.path.dirname(temp) if remote else temp, ignore_errors=True)
    return final


def run(ctx: ExecutionContext) -> None:
    params = ctx.parameters
    out = ctx.outputs["pushed_model"]
    model = ctx.input("model")
    model_dir = destination_dir(params.push_destination, params.model_name)
    reason = why_not_blessed(ctx)
    if reason is not None:
        ctx.report(f"not pushed: {reason}")
        out.properties.update(pushed=False, reason=reason, model_id=model.id)
        return
    source = serving_model_path(model)
    for name in remove_stale_staging(model_dir):
        ctx.report(f"removed {fileio.join(model_dir, name)}, left by a push that died")
    record = push_record(model, source)
    version = already_pushed(model_dir, record)
    reused = version is not None
    if reused:
        final = fileio.join(model_dir, str(version))
        ctx.report(f"version {version} at {final} already holds model {model.id} (pushed by an "
                   "earlier attempt that stopped before recording it); not pushed again")
    else:
        version = next_version(existing_versions(model_dir), params.version_policy)
        for attempt in range(_RENAME_ATTEMPTS):
            try:
                final = push(source, model_dir, version, record)
                break
            except OSError as e:  # another push took this version between listing and rename
                taken = fileio.join(model_dir, str(version))
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY) or attempt == _RENAME_ATTEMPTS - 1 \
                        or not fileio.isdir(taken):
                    raise
                version = next_version(sorted({*existing_versions(model_dir), version}),
                                       params.version_policy)
    removed = []
    for old in existing_versions(model_dir, complete_only=True)[:-params.versions_to_keep]:
        fileio.rmtree(fileio.join(model_dir, str(old)))
        removed.append(old)
    if not reused:
        ctx.report(f"pushed version {version} to {final}")
    out.properties.update(pushed=True, version=version, pushed_destination=final, reused=reused,
                          removed_versions=removed, model_id=model.id)
