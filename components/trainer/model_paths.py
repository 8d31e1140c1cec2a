"""Where a Model artifact keeps its serving SavedModel and checkpoint.

Paths are stored relative to the artifact's directory, because the runner renames
the directory when it publishes the artifact.

Example:
    >>> from components.artifacts import Model
    >>> serving_model_path(Model(uri="/m", properties={"serving_model": "Format-Serving/17"}))
    '/m/Format-Serving/17'
"""

from __future__ import annotations

import os

from components.artifacts import Model
from components.base import ComponentError

SERVING_DIR = "Format-Serving"
CHECKPOINT_DIR = "checkpoint"


def serving_model_path(model: Model) -> str:
    """The serving SavedModel directory of a Trainer's Model artifact."""
    relative = model.properties.get("serving_model")
    if not relative:
        raise ComponentError(
            f"Model artifact {model.uri!r} got properties={model.properties!r}; expected a "
            "'serving_model' entry. How to fix: pass a Model produced by the Trainer.")
    return os.path.join(model.uri, relative)


def checkpoint_path(model: Model) -> str | None:
    """The checkpoint prefix copied into the Model (for warm starts), or None."""
    relative = model.properties.get("checkpoint")
    return os.path.join(model.uri, relative) if relative else None
