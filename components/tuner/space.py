"""The search space: for each hyperparameter name, a `Choice` of values or a `Range`.

Names are those of `components.trainer.hyperparameters` (``hidden_units``,
``learning_rate``, ``optimizer``, ``embedding_dimension``, ...). A ``float`` or ``int``
hyperparameter takes a `Range` or a `Choice`; a ``choice`` one (hidden units, optimizer
names, batch_norm) only a `Choice`.

Optuna stores categorical choices as None/bool/int/float/str; a choice that is a list
(hidden units) is suggested as its JSON text (``"[64, 32]"``, readable in the study's
table) and decoded back by `decode`.

Example:
    >>> space = {"hidden_units": Choice([64, 32], [128, 64]), "learning_rate": Range(0.01, 0.3, log=True)}
    >>> check_space(space, "DNNClassifier")
    >>> decode(space["hidden_units"], encode(space["hidden_units"])[1])
    [128, 64]
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from components.feature_spec import FeatureSpec
from components.trainer.hyperparameters import CHOICE, FLOAT, HYPERPARAMETERS, INT, check_hyperparameter, check_value


@dataclasses.dataclass(frozen=True, init=False)
class Choice:
    """One of ``values`` (any JSON values: numbers, strings, booleans, lists of layer sizes).

    Example:
        >>> Choice("Adagrad", "Adam").values
        ('Adagrad', 'Adam')
    """

    values: tuple[Any, ...]

    def __init__(self, *values: Any):
        object.__setattr__(self, "values", tuple(values))


@dataclasses.dataclass(frozen=True)
class Range:
    """A number in ``[low, high]``: a float, or an int when the hyperparameter is an int.

    Attributes:
        low, high: The bounds, both included.
        log: Sample uniformly in log space (``low`` must be > 0), e.g. learning rates.
        step: Sample on a grid ``low, low + step, ...`` (not with ``log``); ints default to 1.
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None


def check_space(space: Mapping[str, Any], estimator: str, feature_spec: FeatureSpec | None = None) -> None:
    """Raises ValueError naming the entry when ``space`` cannot be searched on ``estimator``."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"Tuner got space={space!r}; expected a non-empty mapping of hyperparameter name -> "
                         "Choice(...) or Range(...). How to fix: e.g. space={'learning_rate': Range(0.01, 0.3, "
                         "log=True)}.")
    for name, dimension in space.items():
        try:
            check_hyperparameter(name, estimator, feature_spec)
            check_dimension(name, dimension)
        except ValueError as e:
            raise ValueError(f"Tuner got space[{name!r}]: {e}.") from None


def check_dimension(name: str, dimension: Any) -> None:
    """Raises ValueError (the problem, without the field) when ``dimension`` does not fit ``name``."""
    kind = HYPERPARAMETERS[name].kind
    if isinstance(dimension, Choice):
        if not dimension.values:
            raise ValueError("an empty Choice; expected at least one value. How to fix: list the values to try")
        for value in dimension.values:
            check_value(name, value)
        encoded = encode(dimension)
        if len(set(encoded)) != len(encoded):
            raise ValueError(f"Choice{dimension.values!r} repeats a value. How to fix: list each value once")
        return
    if not isinstance(dimension, Range):
        raise ValueError(f"got {dimension!r}; expected Choice(...) or Range(...). How to fix: wrap the values")
    if kind == CHOICE:
        raise ValueError(f"a Range, but {name} takes a list of choices. How to fix: use Choice(...), e.g. "
                         f"{name}: [a, b] in YAML")
    numbers = [dimension.low, dimension.high] + ([dimension.step] if dimension.step is not None else [])
    if kind == INT and not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers):
        raise ValueError(f"Range(low={dimension.low!r}, high={dimension.high!r}, step={dimension.step!r}); "
                         f"{name} is an int, so low, high and step must be ints. How to fix: e.g. "
                         "Range(4, 16, step=4)")
    if kind == FLOAT and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        raise ValueError(f"Range(low={dimension.low!r}, high={dimension.high!r}); expected numbers. How to fix: "
                         "e.g. Range(0.01, 0.3)")
    if not dimension.low < dimension.high:
        raise ValueError(f"Range(low={dimension.low!r}, high={dimension.high!r}); expected low < high. How to "
                         "fix: swap them, or use Choice(value) for a fixed value")
    if dimension.log and dimension.low <= 0:
        raise ValueError(f"Range(low={dimension.low!r}, log=True); a log range needs low > 0. How to fix: raise "
                         "low, e.g. 0.001, or drop log")
    if dimension.log and dimension.step is not None:
        raise ValueError("Range(log=True, step=...); a log range has no step. How to fix: drop one of them")
    if dimension.step is not None and dimension.step <= 0:
        raise ValueError(f"Range(step={dimension.step!r}); expected step > 0. How to fix: e.g. step=4")
    for bound in (dimension.low, dimension.high):
        check_value(name, bound)


def encode(choice: Choice) -> list[Any]:
    """The choices as Optuna stores them: lists (and other non-scalars) become their JSON text."""
    return [value if value is None or isinstance(value, (bool, int, float, str)) else
            json.dumps(list(value) if isinstance(value, tuple) else value) for value in choice.values]


def decode(dimension: Any, value: Any) -> Any:
    """A suggested value back in the user's terms (the list a JSON-text choice stands for)."""
    if isinstance(dimension, Choice) and isinstance(value, str) and value not in dimension.values:
        return json.loads(value)
    return value


def suggest(trial: Any, name: str, dimension: Any) -> Any:
    """Asks an Optuna trial for ``name``'s value in ``dimension``; returns it decoded."""
    if isinstance(dimension, Choice):
        return decode(dimension, trial.suggest_categorical(name, encode(dimension)))
    if HYPERPARAMETERS[name].kind == INT:
        return trial.suggest_int(name, dimension.low, dimension.high, step=dimension.step or 1, log=dimension.log)
    return trial.suggest_float(name, dimension.low, dimension.high, step=dimension.step, log=dimension.log)
