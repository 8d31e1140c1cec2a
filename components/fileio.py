"""One filesystem layer for artifact and push directories: local paths or filesystem URLs.

A plain path (or ``file://``) goes to ``os``/``shutil``, where a directory rename is atomic. A
URL with another scheme (``gs://``, ``s3://`` with TensorFlow's filesystem plugins, ``hdfs://``,
or TensorFlow's in-memory ``ram://``) goes to ``tf.io.gfile``, the layer TFX uses; TensorFlow is
imported only then, so code that only ever sees local paths (an Airflow DAG parse) never loads it.

Object stores have no atomic directory rename, so a caller that publishes a directory checks
`is_url` and, on a URL, makes the last file it writes the commit marker (the Pusher writes
``saved_model.pb`` last, see components/pusher/executor.py).

Example:
    >>> is_url("gs://bucket/models"), is_url("/srv/models"), is_url("file:///srv/models")
    (True, False, False)
    >>> local_path("file:///srv/models")
    '/srv/models'
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from typing import IO

__all__ = ["is_url", "local_path", "join", "exists", "isdir", "isfile", "listdir", "makedirs", "rmtree",
           "open_file", "copytree", "copy_file", "mtime", "walk"]

_FILE = "file://"


def is_url(path: str) -> bool:
    """True for a filesystem URL other than ``file://`` (handled by ``tf.io.gfile``)."""
    scheme, sep, _ = str(path).partition("://")
    return bool(sep) and scheme != "file" and scheme.replace("+", "").replace("-", "").isalnum()


def local_path(path: str) -> str:
    """``path`` without a ``file://`` prefix."""
    path = os.fspath(path)
    return path[len(_FILE):] if path.startswith(_FILE) else path


def _gfile():
    import tensorflow as tf  # noqa: PLC0415 - only for URLs

    return tf.io.gfile


def join(base: str, *parts: str) -> str:
    """``base/part/...``; a URL keeps its scheme (``/``-joined)."""
    if is_url(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(local_path(base), *parts)


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_url(path) else os.path.exists(local_path(path))


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_url(path) else os.path.isdir(local_path(path))


def isfile(path: str) -> bool:
    if is_url(path):
        gfile = _gfile()
        return gfile.exists(path) and not gfile.isdir(path)
    return os.path.isfile(local_path(path))


def listdir(path: str) -> list[str]:
    """Entry names (no trailing ``/``); [] when ``path`` is not a directory."""
    if is_url(path):
        gfile = _gfile()
        if not gfile.isdir(path):
            return []
        names = [name.rstrip("/") for name in gfile.listdir(path)]
        if not _lists_by_key_prefix(path):
            return names
        return [name for name in names if gfile.exists(join(path, name))]
    path = local_path(path)
    return os.listdir(path) if os.path.isdir(path) else []


def makedirs(path: str) -> None:
    """Creates ``path`` and its parents; an existing directory is fine."""
    if is_url(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(local_path(path), exist_ok=True)


def rmtree(path: str) -> None:
    """Removes a directory tree; a missing one (or one removed meanwhile) is fine."""
    if is_url(path):
        gfile = _gfile()
        try:
            if gfile.isdir(path):
                gfile.rmtree(path)
            elif gfile.exists(path):
                gfile.remove(path)
        except Exception:  # noqa: BLE001 - gfile raises tf.errors.NotFoundError when it went meanwhile
            if gfile.exists(path):
                raise
    else:
        shutil.rmtree(local_path(path), ignore_errors=True)


def open_file(path: str, mode: str = "r") -> IO:
    """A file object for ``path`` (text or binary by ``mode``, as ``open``)."""
    if is_url(path):
        return _gfile().GFile(path, mode)
    return open(local_path(path), mode, encoding=None if "b" in mode else "utf-8")


def copytree(src: str, dst: str, *, last: Iterable[str] = ()) -> None:
    """Copies the directory ``src`` to ``dst`` (which must not exist), any filesystem to any.

    Files named in ``last`` (relative to ``src``) are copied after every other file, so a
    reader that waits for them sees a complete tree even where no rename is atomic.
    """
    if not is_url(src) and not is_url(dst):
        src, dst = local_path(src), local_path(dst)
        deferred = [rel for rel in last if os.path.isfile(os.path.join(src, rel))]
        shutil.copytree(src, dst, ignore=_ignore_relative(src, set(deferred)))
        for rel in deferred:
            shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel))
        return
    src = src if is_url(src) else local_path(src)
    files = []
    for directory, _, names in walk(src):
        rel_dir = _relative(src, directory)
        makedirs(join(dst, rel_dir) if rel_dir else dst)
        files.extend(f"{rel_dir}/{name}" if rel_dir else name for name in names)
    order = [f for f in files if f not in set(last)] + [f for f in last if f in files]
    for rel in order:
        copy_file(join(src, rel), join(dst, rel))


def mtime(path: str) -> float:
    """Seconds since the epoch of the last change of ``path`` (raises OSError when missing)."""
    if is_url(path):
        try:
            return _gfile().stat(path).mtime_nsec / 1e9
        except Exception as e:  # noqa: BLE001 - gfile's NotFoundError is not an OSError
            raise OSError(str(e)) from e
    return os.path.getmtime(local_path(path))


def walk(top: str):
    """``(directory, subdirectories, files)`` for each directory under ``top``, as ``os.walk``."""
    if is_url(top) and _lists_by_key_prefix(top):
        yield from _url_walk(top)
    elif is_url(top):
        yield from _gfile().walk(top)
    else:
        yield from os.walk(local_path(top))


def _lists_by_key_prefix(url: str) -> bool:
    """TensorFlow's ``ram://`` lists a directory by raw key prefix: ``dir/12`` also answers ``3``
    when ``dir/123/...`` exists. Its listings are checked entry by entry (one ``exists`` each);
    object stores (``gs://``, ``s3://``) list ``dir/`` with a delimiter and need no check, which
    would cost a round trip per file."""
    return url.startswith("ram://")


def _url_walk(top: str):
    if not isdir(top):
        return
    gfile = _gfile()
    names = listdir(top)
    subdirectories = [name for name in names if gfile.isdir(join(top, name))]
    yield top, subdirectories, [name for name in names if name not in subdirectories]
    for name in subdirectories:
        yield from _url_walk(join(top, name))


def _relative(base: str, path: str) -> str:
    base, path = base.rstrip("/"), path.rstrip("/")
    return "" if path == base else path[len(base) + 1:]


def copy_file(src: str, dst: str) -> None:
    """Copies one file, any filesystem to any (``dst`` is overwritten; its directory must exist)."""
    if not is_url(src) and not is_url(dst):
        shutil.copy2(local_path(src), local_path(dst))
        return
    with open_file(src, "rb") as source, open_file(dst, "wb") as target:
        target.write(b"")  # gfile creates the file at its first write: an empty file is copied too
        while block := source.read(1 << 20):
            target.write(block)


def _ignore_relative(root: str, skip: set[str]):
    def ignore(directory: str, names: list[str]) -> list[str]:
        rel_dir = os.path.relpath(directory, root)
        return [n for n in names if os.path.normpath(os.path.join(rel_dir, n)) in skip]

    return ignore
