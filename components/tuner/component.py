"""Tuner's spec: an Optuna study over a canned model's hyperparameters, trained on Transform's output.

Example:
    >>> from components.feature_spec import FeatureSpec, Label, Numeric
    >>> from components.trainer.canned_config import CannedEstimatorConfig
    >>> from components.tuner.space import Choice, Range
    >>> params = TunerParameters(
    ...     canned=CannedEstimatorConfig("DNNClassifier", feature_spec=FeatureSpec(
    ...         features=(Numeric("fare"),), label=Label("big_tipper"))),
    ...     space={"hidden_units": Choice([16], [32, 16]), "learning_rate": Range(0.01, 0.3, log=True)},
    ...     trials=4, steps=300)
    >>> params.metric, params.direction, params.eval_every
    ('auc', 'maximize', 100)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from typing import Any

from components.artifacts import Examples, HyperParameters, TransformGraph
from components.base import Channel, Component, InputSpec, file_digest
from components.trainer.canned_config import CannedEstimatorConfig
from components.trainer.component import trainer_package_digest
from components.tuner.space import check_space

MAXIMIZE, MINIMIZE = "maximize", "minimize"
# The Estimator's evaluation metrics a study can optimize, with their better direction.
CLASSIFICATION_METRICS = {"auc": MAXIMIZE, "auc_precision_recall": MAXIMIZE, "accuracy": MAXIMIZE,
                          "precision": MAXIMIZE, "recall": MAXIMIZE, "average_loss": MINIMIZE, "loss": MINIMIZE}
REGRESSION_METRICS = {"average_loss": MINIMIZE, "loss": MINIMIZE}
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")


def metrics_for(estimator: str) -> dict[str, str]:
    """The metrics a study of ``estimator`` can optimize (name -> direction)."""
    return REGRESSION_METRICS if estimator.endswith("Regressor") else CLASSIFICATION_METRICS


def default_metric(estimator: str) -> str:
    """``average_loss`` for a regressor, ``auc`` for a classifier."""
    return "average_loss" if estimator.endswith("Regressor") else "auc"


@dataclasses.dataclass(frozen=True)
class Pruner:
    """How trials that evaluate badly are stopped early (Optuna's pruners).

    Attributes:
        kind: ``median`` (stop a trial whose evaluation is worse than the median of earlier
            trials at the same step), ``hyperband`` (successive halving over the evaluation
            steps) or ``none``.
        startup_trials: ``median``: no pruning until this many trials finished.
        warmup_steps: ``median``: no pruning before this training step.
    """

    kind: str = "median"
    startup_trials: int = 2
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PRUNERS:
            raise ValueError(f"Pruner got kind={self.kind!r}; expected one of {list(PRUNERS)}. How to fix: "
                             "e.g. Pruner('median').")
        for field in ("startup_trials", "warmup_steps"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Pruner got {field}={value!r}; expected an int >= 0. How to fix: e.g. "
                                 f"{field}=2.")


@dataclasses.dataclass(frozen=True)
class TunerParameters:
    """Attributes:
        canned: The model to tune (the Trainer's config); ``space`` values are applied to it.
        space: Hyperparameter name -> `Choice` or `Range` (names: components.trainer.hyperparameters).
        trials: The study ends when this many trials finished (complete, pruned or failed with
            an error); trials a killed process left are retried and do not count.
        steps: Training steps per trial (absolute).
        eval_every: Evaluate, and report to the pruner, every this many steps (and at ``steps``);
            default: three evaluations per trial.
        eval_steps: Batches per evaluation (None: the whole eval split).
        metric: An Estimator evaluation metric (`metrics_for`); default auc for classifiers,
            average_loss for regressors.
        direction: ``maximize`` or ``minimize``; default (and checked against) the metric's.
        sampler: ``tpe`` (Optuna's TPESampler) or ``random``.
        seed: Seeds the sampler (a resumed study is seeded with seed + its trial count, so it
            does not repeat its first samples). The model's own seed is ``canned.random_seed``.
        pruner: See `Pruner`.
        storage: A SQLAlchemy URL of the study's database (several machines can share one; not
            the metadata store's); None: ``<root>/<Tuner id>/studies.sqlite`` (docs/tuner.md).
        study_name: Default: the Tuner's id plus a digest of everything that decides a trial's
            result (inputs, canned, space, steps, metric, code), so a rerun finds its study.
        train_split, eval_split: Splits of the transformed examples.
    """

    canned: CannedEstimatorConfig
    space: Mapping[str, Any]
    trials: int = 8
    steps: int = 300
    eval_every: int | None = None
    eval_steps: int | None = None
    metric: str | None = None
    direction: str | None = None
    sampler: str = "tpe"
    seed: int | None = None
    pruner: Pruner = Pruner()
    storage: str | None = None
    study_name: str | None = None
    train_split: str = "train"
    eval_split: str = "eval"

    def __post_init__(self) -> None:
        if not isinstance(self.canned, CannedEstimatorConfig):
            raise TypeError(f"Tuner got canned={self.canned!r}; expected a CannedEstimatorConfig. How to fix: "
                            "pass the Trainer's, e.g. CannedEstimatorConfig('DNNClassifier', feature_spec=spec).")
        check_space(self.space, self.canned.estimator, self.canned.feature_spec)
        object.__setattr__(self, "space", dict(self.space))
        for field in ("trials", "steps"):
            _check_int(field, getattr(self, field), minimum=1)
        for field in ("eval_every", "eval_steps"):
            if getattr(self, field) is not None:
                _check_int(field, getattr(self, field), minimum=1)
        if self.eval_every is None:
            object.__setattr__(self, "eval_every", max(1, self.steps // 3))
        known = metrics_for(self.canned.estimator)
        metric = self.metric or default_metric(self.canned.estimator)
        if metric not in known:
            raise ValueError(f"Tuner got metric={metric!r}; expected one of {sorted(known)} for "
                             f"{self.canned.estimator}. How to fix: pick one of those Estimator metrics.")
        if self.direction is not None and self.direction != known[metric]:
            raise ValueError(f"Tuner got direction={self.direction!r} for metric={metric!r}; {metric} is better "
                             f"when it is {'higher' if known[metric] == MAXIMIZE else 'lower'}, so expected "
                             f"{known[metric]!r}. How to fix: remove direction, or set it to {known[metric]!r}.")
        object.__setattr__(self, "metric", metric)
        object.__setattr__(self, "direction", known[metric])
        if self.sampler not in SAMPLERS:
            raise ValueError(f"Tuner got sampler={self.sampler!r}; expected one of {list(SAMPLERS)}. How to fix: "
                             "use 'tpe' (default) or 'random'.")
        if self.seed is not None:
            _check_int("seed", self.seed, minimum=0)
        if not isinstance(self.pruner, Pruner):
            raise TypeError(f"Tuner got pruner={self.pruner!r}; expected a Pruner. How to fix: e.g. "
                            "pruner=Pruner('median', startup_trials=2).")
        if self.storage is not None and (not isinstance(self.storage, str) or "://" not in self.storage):
            raise ValueError(f"Tuner got storage={self.storage!r}; expected a SQLAlchemy URL such as "
                             "'postgresql+psycopg://host/optuna' or 'sqlite:////abs/studies.sqlite', or None. How "
                             "to fix: pass a URL, or None for a SQLite file next to the Tuner's outputs.")
        if self.study_name is not None and (not isinstance(self.study_name, str) or not self.study_name):
            raise ValueError(f"Tuner got study_name={self.study_name!r}; expected a non-empty str or None. How "
                             "to fix: e.g. study_name='taxi-wide-deep'.")


def _check_int(field: str, value: Any, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Tuner got {field}={value!r}; expected an int >= {minimum}. How to fix: pass a whole "
                         f"number, e.g. {field}={max(minimum, 1)}.")


class Tuner(Component):
    """Searches hyperparameters with Optuna, training each trial through the Trainer's code path.

    Each trial applies its values to ``canned`` (`apply_hyperparameters`), builds the
    Estimator and input_fns exactly as the Trainer does (`canned_trainer_fn`), trains
    ``steps`` steps in chunks of ``eval_every``, and evaluates after each chunk; the
    evaluations are reported to the pruner, which may stop the trial. The study lives in
    ``storage`` (default: ``<root>/<Tuner id>/studies.sqlite``), so a killed Tuner resumes:
    finished trials are kept, and a trial a dead process left RUNNING is marked FAIL and
    retried with the same values; a rerun with more trials adds to the same study.

    Outputs ``best_hyperparameters`` (HyperParameters: ``best_hyperparameters.json``,
    ``trials.csv``), for ``Trainer(..., hyperparameters=tuner.outputs["best_hyperparameters"])``.

    Args:
        examples: Transform's ``transformed_examples``.
        transform_graph: Transform's ``transform_graph``.
        canned, space, trials, steps, eval_every, eval_steps, metric, direction, sampler, seed,
            pruner, storage, study_name, train_split, eval_split: See TunerParameters.
        id: Node id (default "Tuner").
    """

    INPUTS = {"examples": InputSpec(Examples), "transform_graph": InputSpec(TransformGraph)}
    OUTPUTS = {"best_hyperparameters": HyperParameters}
    PARAMETERS = TunerParameters
    EXECUTOR = "components.tuner.executor:run"

    def __init__(self, examples: Channel, transform_graph: Channel, *, canned: CannedEstimatorConfig,
                 space: Mapping[str, Any], trials: int = 8, steps: int = 300, eval_every: int | None = None,
                 eval_steps: int | None = None, metric: str | None = None, direction: str | None = None,
                 sampler: str = "tpe", seed: int | None = None, pruner: Pruner | None = None,
                 storage: str | None = None, study_name: str | None = None, train_split: str = "train",
                 eval_split: str = "eval", id: str | None = None):
        parameters = TunerParameters(canned, space, trials, steps, eval_every, eval_steps, metric, direction,
                                     sampler, seed, pruner or Pruner(), storage, study_name, train_split,
                                     eval_split)
        super().__init__(inputs={"examples": examples, "transform_graph": transform_graph},
                         parameters=parameters, id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """Adds the tuner's and trainer's code: a trial trains through both."""
        extras = super().fingerprint_extras()
        extras["code"] = code_digest()
        return extras


def code_digest() -> str:
    """Digest of the code a trial's result depends on: this package, the Trainer helpers it calls, ``trainer``."""
    here = os.path.dirname(__file__)
    trainer_helpers = os.path.join(os.path.dirname(here), "trainer")
    files = [os.path.join(here, n) for n in sorted(os.listdir(here)) if n.endswith(".py")]
    files += [os.path.join(trainer_helpers, n) for n in ("canned_config.py", "fn_args.py", "hyperparameters.py")]
    digest = hashlib.sha256(trainer_package_digest().encode())
    for path in files:
        digest.update(os.path.basename(path).encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()
