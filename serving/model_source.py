"""Scanning a model's base path for numeric version directories.

Only directories named by a non-negative integer that hold a
``saved_model.pb`` (or ``.pbtxt``, or a ``model.tflite`` for
``--prefer_tflite_model``) are candidates; temporary siblings such as
``.tmp-3`` (how the Pusher stages a copy) are ignored. A fingerprint of each
directory's files lets the manager wait until a directory stops changing
before loading it.
"""

from __future__ import annotations

import logging
import os

_log = logging.getLogger(__name__)
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt", "model.tflite")

Fingerprint = tuple[tuple[str, int, int], ...]


def scan_versions(base_path: str) -> dict[int, str]:
    """Maps version number to directory for loadable-looking version dirs.

    Example:
        >>> scan_versions("/no/such/dir")
        {}
    """
    try:
        entries = list(os.scandir(base_path))
    except OSError:
        return {}
    real_base = os.path.realpath(base_path)
    versions = {}
    for entry in entries:
        if not entry.name.isdigit() or len(entry.name) > 18:
            continue
        path = os.path.join(base_path, entry.name)
        if not entry.is_dir():
            continue
        if os.path.commonpath([real_base, os.path.realpath(path)]) != real_base:
            _log.warning("Ignoring version dir %s: it resolves outside %s", path, base_path)
            continue
        if any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES):
            versions[int(entry.name)] = path
    return versions


def fingerprint(path: str) -> Fingerprint:
    """(relative path, size, mtime_ns) of every file under ``path``, sorted."""
    items = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            items.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(items))
