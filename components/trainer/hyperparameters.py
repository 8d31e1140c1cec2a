"""Named hyperparameters of a canned model, and applying chosen values to its config.

The Tuner searches these names and the Trainer applies the values it found (its
``hyperparameters`` input) to the same `CannedEstimatorConfig`, so both build the
model through `build_estimator` with identical arguments. A name stands for the
constructor argument (or config field) it sets on each estimator family:

| name | kind | DNN* | DNNLinearCombined* | Linear* / Baseline* |
|---|---|---|---|---|
| ``hidden_units`` | choice of int lists | ``hidden_units`` | ``dnn_hidden_units`` | - |
| ``dropout`` | float in [0, 1) | ``dropout`` | ``dnn_dropout`` | - |
| ``batch_norm`` | choice of bools | ``batch_norm`` | ``batch_norm`` | - |
| ``optimizer`` | choice of names | ``optimizer`` | ``dnn_optimizer`` | ``optimizer`` |
| ``learning_rate`` | float > 0 | ``optimizer`` | ``dnn_optimizer`` | ``optimizer`` |
| ``linear_optimizer`` | choice of names | - | ``linear_optimizer`` | - |
| ``linear_learning_rate`` | float > 0 | - | ``linear_optimizer`` | - |
| ``embedding_dimension`` | int >= 1 | every Embedding feature's ``dimension`` | same | - |
| ``batch_size`` | int >= 1 | ``CannedEstimatorConfig.batch_size`` | same | same |

BoostedTrees* take ``learning_rate`` (the trees' shrinkage, a float > 0), ``n_trees`` and
``max_depth`` (ints >= 1), each setting the argument of that name, and ``batch_size``.

An optimizer and its learning rate become one ``{"name": ..., "learning_rate": ...}``
mapping: a tuned name drops the base optimizer's other arguments (they belong to
another class); a tuned rate alone keeps the base optimizer (default: the
estimator's, Adagrad for DNNs, Ftrl for linear models).

Example:
    >>> from components.feature_spec import FeatureSpec, Label, Numeric
    >>> from components.trainer.canned_config import CannedEstimatorConfig
    >>> config = CannedEstimatorConfig("DNNLinearCombinedClassifier", feature_spec=FeatureSpec(
    ...     features=(Numeric("fare"),), label=Label("big_tipper")), kwargs={"dnn_hidden_units": [8]})
    >>> tuned = apply_hyperparameters(config, {"hidden_units": [16, 8], "learning_rate": 0.1})
    >>> tuned.kwargs["dnn_hidden_units"], tuned.kwargs["dnn_optimizer"]
    ([16, 8], {'name': 'Adagrad', 'learning_rate': 0.1})
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from components.artifacts import HyperParameters
from components.feature_spec import Embedding, FeatureSpec
from components.trainer.canned_config import CannedEstimatorConfig

# trainer.optimizers' names (tests/components/test_tuner.py checks they agree); listed here so
# that validating a YAML file does not import TensorFlow.
OPTIMIZER_NAMES = ("Adagrad", "Adam", "Ftrl", "Momentum", "RMSProp", "SGD")
FLOAT, INT, CHOICE = "float", "int", "choice"
DNN, COMBINED, LINEAR, BASELINE = "DNN", "DNNLinearCombined", "Linear", "Baseline"
BOOSTED = "BoostedTrees"


def family(estimator: str) -> str:
    """The estimator's family: ``DNNLinearCombined``, ``DNN``, ``Linear``, ``Baseline`` or ``BoostedTrees``."""
    for prefix in (COMBINED, DNN, LINEAR, BASELINE, BOOSTED):
        if estimator.startswith(prefix):
            return prefix
    raise ValueError(f"family got estimator={estimator!r}; expected a canned estimator name. How to fix: "
                     "use one of components.trainer.canned_config.CANNED_ESTIMATORS.")


def _hidden_units(value: Any) -> str | None:
    if (isinstance(value, (list, tuple)) and value
            and all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in value)):
        return None
    return "expected a non-empty list of layer sizes (ints >= 1), e.g. [64, 32]"


def _dropout(value: Any) -> str | None:
    return None if _real(value) and 0 <= value < 1 else "expected a float in [0, 1)"


def _positive(value: Any) -> str | None:
    return None if _real(value) and value > 0 else "expected a float > 0"


def _positive_int(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else "expected an int >= 1"


def _bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "expected true or false"


def _optimizer(value: Any) -> str | None:
    return None if value in OPTIMIZER_NAMES else f"expected one of {list(OPTIMIZER_NAMES)}"


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One tunable name.

    Attributes:
        kind: ``float`` and ``int`` take a range or choices; ``choice`` only choices.
        families: The estimator families it applies to, with the argument it sets in each.
        check: Returns what is wrong with a value, or None.
    """

    kind: str
    families: Mapping[str, str]
    check: Callable[[Any], str | None]


_DNN_PARTS = {DNN: "", COMBINED: "dnn_"}
_OPTIMIZED = {DNN: "optimizer", COMBINED: "dnn_optimizer", LINEAR: "optimizer", BASELINE: "optimizer"}
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "hidden_units": Hyperparameter(CHOICE, {f: p + "hidden_units" for f, p in _DNN_PARTS.items()}, _hidden_units),
    "dropout": Hyperparameter(FLOAT, {f: p + "dropout" for f, p in _DNN_PARTS.items()}, _dropout),
    "batch_norm": Hyperparameter(CHOICE, {DNN: "batch_norm", COMBINED: "batch_norm"}, _bool),
    "optimizer": Hyperparameter(CHOICE, _OPTIMIZED, _optimizer),
    "learning_rate": Hyperparameter(FLOAT, {**_OPTIMIZED, BOOSTED: "learning_rate"}, _positive),
    "n_trees": Hyperparameter(INT, {BOOSTED: "n_trees"}, _positive_int),
    "max_depth": Hyperparameter(INT, {BOOSTED: "max_depth"}, _positive_int),
    "linear_optimizer": Hyperparameter(CHOICE, {COMBINED: "linear_optimizer"}, _optimizer),
    "linear_learning_rate": Hyperparameter(FLOAT, {COMBINED: "linear_optimizer"}, _positive),
    "embedding_dimension": Hyperparameter(INT, {DNN: "dimension", COMBINED: "dimension"}, _positive_int),
    "batch_size": Hyperparameter(INT, {DNN: "batch_size", COMBINED: "batch_size", LINEAR: "batch_size",
                                       BASELINE: "batch_size", BOOSTED: "batch_size"}, _positive_int),
}
_DEFAULT_OPTIMIZERS = {"optimizer": {DNN: "Adagrad", LINEAR: "Ftrl", BASELINE: "Ftrl"},
                       "dnn_optimizer": {COMBINED: "Adagrad"}, "linear_optimizer": {COMBINED: "Ftrl"}}


def check_hyperparameter(name: str, estimator: str, feature_spec: FeatureSpec | None = None) -> None:
    """Raises ValueError unless ``name`` is tunable on ``estimator`` (over ``feature_spec``).

    The message starts with the problem (the caller prefixes where the name came from).
    """
    spec = HYPERPARAMETERS.get(name)
    if spec is None:
        raise ValueError(f"unknown hyperparameter {name!r}; expected one of {sorted(HYPERPARAMETERS)}. How to "
                         "fix: use a name from the table in docs/tuner.md")
    if family(estimator) not in spec.families:
        usable = sorted(n for n, h in HYPERPARAMETERS.items() if family(estimator) in h.families)
        raise ValueError(f"{name!r} does not apply to {estimator}; expected one of {usable}. How to fix: remove "
                         "it, or tune an estimator that has it")
    if name == "embedding_dimension" and feature_spec is not None and not any(
            isinstance(f, Embedding) for f in feature_spec.features):
        raise ValueError("'embedding_dimension' needs an embedding feature; the features have none. How to fix: "
                         "add {type: embedding, source: ...} to features, or remove it")


def check_value(name: str, value: Any) -> None:
    """Raises ValueError when ``value`` is not a valid value of hyperparameter ``name``."""
    problem = HYPERPARAMETERS[name].check(value)
    if problem:
        raise ValueError(f"{name} got {value!r}; {problem}. How to fix: use a value the table in "
                         "docs/tuner.md allows")


def apply_hyperparameters(config: CannedEstimatorConfig, values: Mapping[str, Any]) -> CannedEstimatorConfig:
    """A copy of ``config`` with the hyperparameter ``values`` set (names: `HYPERPARAMETERS`).

    Raises:
        ValueError: a name that does not apply to the estimator, or a bad value.
    """
    kind = family(config.estimator)
    kwargs = dict(config.kwargs)
    feature_spec, batch_size = config.feature_spec, config.batch_size
    optimizers: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        try:
            check_hyperparameter(name, config.estimator, feature_spec)
            check_value(name, value)
        except ValueError as e:
            raise ValueError(f"apply_hyperparameters got {name}={value!r}: {e}.") from None
        target = HYPERPARAMETERS[name].families[kind]
        if name == "batch_size":
            batch_size = value
        elif name == "embedding_dimension":
            feature_spec = dataclasses.replace(feature_spec, features=tuple(
                dataclasses.replace(f, dimension=value) if isinstance(f, Embedding) else f
                for f in feature_spec.features))
        elif kind == BOOSTED and name == "learning_rate":
            kwargs[target] = float(value)  # a tree's shrinkage, not an optimizer's
        elif name.endswith("optimizer"):
            optimizers.setdefault(target, {})["name"] = value
        elif name.endswith("learning_rate"):
            optimizers.setdefault(target, {})["learning_rate"] = float(value)
        else:
            kwargs[target] = list(value) if isinstance(value, tuple) else value
    for target, chosen in optimizers.items():
        kwargs[target] = _optimizer_with(kwargs.get(target), chosen, _DEFAULT_OPTIMIZERS[target][kind])
    return dataclasses.replace(config, kwargs=kwargs, feature_spec=feature_spec, batch_size=batch_size)


def _optimizer_with(base: Any, chosen: dict[str, Any], default: str) -> Any:
    """The base optimizer argument with a tuned name and/or learning rate."""
    if "name" in chosen:
        return dict(chosen)  # another optimizer class: the base's other arguments do not apply
    if isinstance(base, Mapping):
        return {**base, **chosen}
    if isinstance(base, str) or base is None:
        return {"name": base or default, **chosen}
    raise ValueError(f"learning_rate cannot be tuned for optimizer={base!r}; expected a name or a "
                     "{name, ...} mapping. How to fix: give the optimizer by name")


def write_best_hyperparameters(artifact: HyperParameters, values: Mapping[str, Any], **info: Any) -> None:
    """Writes the artifact's ``best_hyperparameters.json``: ``{"values": {...}, **info}``."""
    with open(artifact.best_hyperparameters_path, "w", encoding="utf-8") as f:
        json.dump({"values": dict(values), **info}, f, indent=2, sort_keys=True)


def read_best_hyperparameters(artifact: HyperParameters) -> dict[str, Any]:
    """The ``values`` in a HyperParameters artifact's ``best_hyperparameters.json``."""
    path = artifact.best_hyperparameters_path
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)["values"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"read_best_hyperparameters got {path!r}: {e!r}. How to fix: pass the Tuner's "
                         "best_hyperparameters output.") from None
    if not isinstance(values, dict):
        raise ValueError(f"read_best_hyperparameters got values={values!r} in {path!r}; expected a mapping. "
                         "How to fix: pass the Tuner's best_hyperparameters output.")
    return values
