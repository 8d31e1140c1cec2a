"""Validation of model names and version strings that reach the file system."""

from __future__ import annotations

import re

from serving import errors

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def is_valid_model_name(name: str) -> bool:
    """Whether ``name`` is a safe model name (no path separators, no ``..``)."""
    return bool(_MODEL_NAME.match(name)) and ".." not in name


def check_model_name(name: str) -> str:
    """Returns ``name`` or raises INVALID_ARGUMENT if it could escape a path.

    Example:
        >>> check_model_name("taxi")
        'taxi'
    """
    if not is_valid_model_name(name):
        raise errors.invalid_argument(
            f"Invalid model name {name!r}: use 1-128 letters, digits, '_', '-' or "
            "'.', starting with a letter or digit, without '/' or '..'."
        )
    return name


def parse_version(text: str) -> int:
    """Parses a version path segment such as ``"3"`` or raises INVALID_ARGUMENT."""
    if not text.isdigit() or len(text) > 18:
        raise errors.invalid_argument(
            f"Invalid model version {text!r}: expected a non-negative integer, "
            "e.g. /v1/models/NAME/versions/1."
        )
    return int(text)
