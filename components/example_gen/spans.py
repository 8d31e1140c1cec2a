"""Resolves an input pattern with ``{SPAN}`` / ``{VERSION}`` to the latest span's files.

Example:
    >>> resolve_span("/data", "data.csv", exists=lambda pattern: ["/data/data.csv"])
    (0, None, ['/data/data.csv'])
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable

from components.base import DataError

SPAN, VERSION = "{SPAN}", "{VERSION}"


def resolve_span(input_base: str, file_pattern: str, *,
                 exists: Callable[[str], list[str]] = glob.glob) -> tuple[int, int | None, list[str]]:
    """Returns (span, version, sorted files) of the latest span (and its latest version).

    Without ``{SPAN}`` in the pattern the span is 0 and every matching file is used.

    Raises:
        ValueError: when no file matches (a ``DataError`` naming the directory when one on
            the way cannot be read, which a glob alone would hide).
    """
    pattern = os.path.join(input_base, file_pattern)
    glob_pattern = pattern.replace(SPAN, "*").replace(VERSION, "*")
    files = sorted(f for f in exists(glob_pattern) if os.path.isfile(f) or exists is not glob.glob)
    if not files:
        if exists is glob.glob:
            _check_readable(input_base, glob_pattern)
        missing = "" if exists is not glob.glob or os.path.isdir(input_base) else " (input_base is not a directory)"
        raise ValueError(
            f"ExampleGen got input_base={input_base!r}, file_pattern={file_pattern!r}; no file matches "
            f"{glob_pattern!r}{missing}. How to fix: check the path, or the {SPAN}/{VERSION} placeholders."
        )
    if SPAN not in pattern:
        if VERSION in pattern:
            raise ValueError(
                f"ExampleGen got file_pattern={file_pattern!r}; expected {SPAN} whenever {VERSION} is "
                f"used. How to fix: add {SPAN} to the pattern."
            )
        return 0, None, files
    regex = re.escape(pattern).replace(re.escape(SPAN), r"(?P<span>\d+)").replace(
        re.escape(VERSION), r"(?P<version>\d+)").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    matched: dict[tuple[int, int | None], list[str]] = {}
    for path in files:
        m = re.fullmatch(regex, path)
        if m is None:
            continue
        version = int(m.group("version")) if VERSION in pattern else None
        matched.setdefault((int(m.group("span")), version), []).append(path)
    if not matched:
        raise ValueError(
            f"ExampleGen got file_pattern={file_pattern!r}; files match the glob but none has a "
            f"numeric {SPAN}. How to fix: name files like span-1.csv for pattern 'span-{SPAN}.csv'."
        )
    span = max(s for s, _ in matched)
    version = max((v for s, v in matched if s == span), key=lambda v: -1 if v is None else v)
    return span, version, sorted(matched[(span, version)])


def _check_readable(input_base: str, glob_pattern: str) -> None:
    """Raises a DataError for the first directory of the pattern that exists but cannot be listed."""
    fixed = os.path.dirname(glob_pattern)
    while glob.has_magic(fixed):
        fixed = os.path.dirname(fixed)
    candidates = [fixed]
    directory_pattern = os.path.dirname(glob_pattern)
    if glob.has_magic(directory_pattern):
        candidates += sorted(glob.glob(directory_pattern))
    if not os.path.exists(input_base):
        # The closest existing ancestor tells a missing directory from a hidden one.
        ancestor = input_base
        while ancestor and not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
            ancestor = os.path.dirname(ancestor)
        candidates.insert(0, ancestor)
    for directory in candidates:
        if not os.path.isdir(directory):
            continue
        try:
            with os.scandir(directory) as entries:
                next(entries, None)
        except PermissionError as e:
            raise DataError(directory, None, None,
                            f"cannot be listed ({type(e).__name__}: {e.strerror}), so no input file can be found "
                            "in it.", "make it readable by this user (e.g. chmod u+rx on it and its parents), "
                            "or point input_base elsewhere.") from None
