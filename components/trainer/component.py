"""Trainer's spec: trains an Estimator on transformed examples and exports a raw-input model.

Example:
    >>> from components.feature_spec import FeatureSpec, Label, Numeric
    >>> from components.trainer.canned_config import CannedEstimatorConfig
from components.trainer.serving_export import TFLiteOptions
    >>> params = TrainerParameters(canned=CannedEstimatorConfig(
    ...     "LinearClassifier", feature_spec=FeatureSpec(features=(Numeric("fare"),),
    ...                                                  label=Label("big_tipper"))),
    ...     train_steps=10)
    >>> params.label_key
    'big_tipper'
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from components.artifacts import (
    Examples, ExampleStatistics, HyperParameters, Model, ModelRun, Schema, TransformGraph)
from components.base import SPAN_WINDOW, Channel, Component, InputSpec, file_digest
from components.trainer.canned_config import CannedEstimatorConfig
from components.trainer.serving_export import TFLiteOptions


@dataclasses.dataclass(frozen=True)
class TrainerParameters:
    """Attributes:
        module_file: A Python file defining ``trainer_fn(fn_args)`` or TFX's
            ``trainer_fn(fn_args, schema)`` returning the Estimator and its specs, or TFX's
            generic ``run_fn(fn_args)`` that trains and saves the serving SavedModel itself
            (or use ``canned``). See docs/trainer_modules.md.
        trainer_fn: The function's name in module_file. When the module has no function of
            the default name ``trainer_fn`` but has ``run_fn``, that one is called.
        canned: Build a canned estimator from this config instead of a module.
        train_steps: Absolute number of training steps.
        eval_steps: Batches per evaluation (None: the whole eval split).
        label_key: The label; default: the canned config's FeatureSpec label.
        train_split: Split of the transformed examples to train on.
        eval_split: Split to evaluate on.
        custom_config: Passed unchanged to trainer_fn as ``fn_args.custom_config``.
        run_fn: Call this TFX generic-Trainer function of module_file instead of trainer_fn.
        span_window: Train on the newest this many spans (TFX's RollingRange); > 1 needs the
            ``raw_examples`` input (see components.trainer.span_window).
        tflite: Also convert the serving model to TF Lite, ``model.tflite`` beside the
            SavedModel (pushed with it): raw feature tensors in, every prediction out
            (`TFLiteOptions`). Model property ``tflite_model``. Not with ``run_fn``.
    """

    module_file: str | None = None
    trainer_fn: str = "trainer_fn"
    canned: CannedEstimatorConfig | None = None
    train_steps: int = 1000
    eval_steps: int | None = None
    label_key: str | None = None
    train_split: str = "train"
    eval_split: str = "eval"
    custom_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    run_fn: str | None = None
    span_window: int = 1
    tflite: TFLiteOptions | None = None

    def __post_init__(self) -> None:
        if (self.module_file is None) == (self.canned is None):
            raise ValueError(
                f"Trainer got module_file={self.module_file!r}, canned={self.canned!r}; expected "
                "exactly one of them. How to fix: pass a module defining trainer_fn, or a "
                "CannedEstimatorConfig.")
        if self.canned is not None and not isinstance(self.canned, CannedEstimatorConfig):
            raise TypeError(
                f"Trainer got canned={self.canned!r}; expected a CannedEstimatorConfig. How to fix: "
                "build one, e.g. CannedEstimatorConfig('LinearClassifier', feature_spec=spec).")
        if not isinstance(self.train_steps, int) or self.train_steps < 1:
            raise ValueError(
                f"Trainer got train_steps={self.train_steps!r}; expected an int >= 1. How to fix: "
                "pass the number of training steps, e.g. train_steps=1000.")
        if self.eval_steps is not None and (not isinstance(self.eval_steps, int) or self.eval_steps < 1):
            raise ValueError(
                f"Trainer got eval_steps={self.eval_steps!r}; expected an int >= 1 or None. How to "
                "fix: pass None to evaluate the whole eval split.")
        if self.run_fn is not None and (self.module_file is None or not isinstance(self.run_fn, str)
                                        or not self.run_fn.isidentifier()):
            raise ValueError(
                f"Trainer got run_fn={self.run_fn!r} with module_file={self.module_file!r}; expected the "
                "name of a function in module_file. How to fix: pass module_file= and run_fn='run_fn'.")
        if not isinstance(self.span_window, int) or isinstance(self.span_window, bool) or self.span_window < 1:
            raise ValueError(
                f"Trainer got span_window={self.span_window!r}; expected an int >= 1. How to fix: pass the "
                "number of newest spans to train on, e.g. span_window=3.")
        if self.tflite is not None and not isinstance(self.tflite, TFLiteOptions):
            raise TypeError(
                f"Trainer got tflite={self.tflite!r}; expected a TFLiteOptions or None. How to fix: pass "
                "tflite=TFLiteOptions() (float32) or TFLiteOptions(quantize='dynamic').")
        if self.tflite is not None and self.run_fn is not None:
            raise NotImplementedError(
                "Trainer(tflite=..., run_fn=...) is not supported: run_fn saves the serving model itself. How "
                "to fix: convert it in run_fn (trainer.export.convert_saved_model), or use trainer_fn.")
        if self.label_key is None and self.canned is not None:
            object.__setattr__(self, "label_key", self.canned.feature_spec.label.name)
        if self.label_key is None:
            raise ValueError(
                "Trainer got label_key=None; expected the label's name. How to fix: pass "
                "label_key='big_tipper' (or use a canned config, whose FeatureSpec names it).")


class Trainer(Component):
    """Trains an Estimator with ``trainer.train_and_evaluate`` on Transform's output.

    Outputs ``model`` (the serving SavedModel, which takes raw serialized tf.Examples and
    applies the transform graph, plus the final checkpoint and, for a canned model, the
    vocabularies, for warm starts; properties ``serving_raw_features``, the raw features a
    request must carry, and ``serving_signatures``; the signatures are documented in
    docs/trainer_modules.md) and ``model_run`` (the Estimator's model_dir: checkpoints
    and TensorBoard logs).

    Training runs in the execution's resumable work dir: after a crash, a rerun with the
    same inputs resumes from the newest checkpoint (property ``resumed_from_step``). With a
    ``base_model`` (normally `LatestBlessedModelResolver`'s output) an empty model_dir is
    warm-started from its checkpoint (properties ``base_model_id``, ``warm_started_from``);
    a canned model's vocabulary-indexed rows are first moved to this run's ids, and a base of
    another architecture is skipped (a cold start, property ``warm_start_skipped``).

    Args:
        examples: Transform's ``transformed_examples``.
        transform_graph: Transform's ``transform_graph``.
        schema: The raw data's Schema (serving requests are parsed with it).
        base_model: Optional Model to warm-start from (its checkpoint).
        statistics: Optional ExampleStatistics of the raw examples. Before training, a
            classifier (an Estimator whose ``head`` is known: the canned ones) whose label has
            fewer than 2 distinct values in the train split is an error naming the label, the
            split and the value (a custom model_fn, whose head is unknown, gets a warning); the
            values come from these statistics, or without them from a scan of the transformed
            train split that stops at the second value. A known head then gets the label's type
            and values checked against it (class ids in [0, n_classes), label_vocabulary for
            strings, no fractional floats for a classifier, numbers for a regressor; see
            docs/trainer_modules.md), a problem in the raw statistics being confirmed on the
            transformed split first.
            After training, metrics one class leaves undefined (AUC) are left out of
            ``metrics`` and listed in ``undefined_metrics`` with the reason, not recorded as 0.
        raw_examples: ExampleGen's Examples; with ``span_window`` > 1 the runner resolves the
            newest ``span_window`` spans of it (the ``span_window`` input policy, as for the
            Transform) and the Trainer trains on the earlier spans' train splits too, transformed
            with this run's graph (property ``train_spans`` of the Model).
        span_window: See TrainerParameters.
        hyperparameters: Optional HyperParameters (the Tuner's ``best_hyperparameters``). A
            canned model gets its values applied to ``canned`` (`apply_hyperparameters`: e.g.
            ``hidden_units`` sets ``dnn_hidden_units`` of a wide & deep model); a trainer_fn
            reads them in ``fn_args.hyperparameters``. The Model records them in the
            ``hyperparameters`` property.
        module_file, trainer_fn, run_fn, canned, train_steps, eval_steps, label_key, train_split,
            eval_split, custom_config, tflite: See TrainerParameters.
        id: Node id (default "Trainer").
    """

    INPUTS = {"examples": InputSpec(Examples), "transform_graph": InputSpec(TransformGraph),
              "schema": InputSpec(Schema), "base_model": InputSpec(Model, optional=True),
              "statistics": InputSpec(ExampleStatistics, optional=True),
              "hyperparameters": InputSpec(HyperParameters, optional=True),
              "raw_examples": InputSpec(Examples, optional=True)}
    OUTPUTS = {"model": Model, "model_run": ModelRun}
    PARAMETERS = TrainerParameters
    EXECUTOR = "components.trainer.executor:run"

    def __init__(self, examples: Channel, transform_graph: Channel, schema: Channel, *,
                 base_model: Channel | None = None, statistics: Channel | None = None,
                 hyperparameters: Channel | None = None, module_file: str | None = None,
                 trainer_fn: str = "trainer_fn", canned: CannedEstimatorConfig | None = None,
                 train_steps: int = 1000, eval_steps: int | None = None, label_key: str | None = None,
                 train_split: str = "train", eval_split: str = "eval",
                 custom_config: Mapping[str, Any] | None = None, run_fn: str | None = None,
                 raw_examples: Channel | None = None, span_window: int = 1,
                 tflite: TFLiteOptions | None = None, id: str | None = None):
        if module_file is not None and not os.path.isfile(module_file):
            raise ValueError(
                f"Trainer got module_file={module_file!r}; no such file. How to fix: pass the path "
                "of a .py file defining trainer_fn.")
        parameters = TrainerParameters(
            os.path.abspath(module_file) if module_file else None, trainer_fn, canned, train_steps,
            eval_steps, label_key, train_split, eval_split, dict(custom_config or {}), run_fn, span_window,
            tflite)
        if span_window > 1:
            if raw_examples is None:
                raise ValueError(
                    f"Trainer got span_window={span_window} and raw_examples=None; expected ExampleGen's "
                    "examples, whose earlier spans the Trainer transforms with this run's graph. How to fix: "
                    "pass raw_examples=example_gen.outputs['examples'].")
            if raw_examples.policy != SPAN_WINDOW or raw_examples.window != span_window:
                raw_examples = raw_examples.span_window(span_window)
        else:
            raw_examples = None  # one span: the transformed examples are all there is to read
        super().__init__(inputs={"examples": examples, "transform_graph": transform_graph,
                                 "schema": schema, "base_model": base_model, "statistics": statistics,
                                 "hyperparameters": hyperparameters, "raw_examples": raw_examples},
                         parameters=parameters, id=id)

    def fingerprint_extras(self) -> dict[str, str]:
        """Adds the user module's code and the trainer package's helpers."""
        extras = super().fingerprint_extras()
        if self.parameters.module_file:
            extras["module_file"] = file_digest(self.parameters.module_file)
        here = os.path.dirname(__file__)
        for name in ("canned_config.py", "serving_export.py", "fn_args.py", "warm_start.py", "label_check.py",
                     "hyperparameters.py", "span_window.py"):
            extras[name] = file_digest(os.path.join(here, name))
        # The Estimator code itself: a changed trainer package (e.g. renamed variables) must not
        # reuse a cached model, nor resume a killed run's checkpoint written by the old code.
        extras["trainer_package"] = trainer_package_digest()
        return extras


@functools.lru_cache(maxsize=1)
def trainer_package_digest() -> str:
    """SHA-256 over the ``trainer`` package's .py files (found without importing TensorFlow)."""
    spec = importlib.util.find_spec("trainer")
    root = list(spec.submodule_search_locations)[0]
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(directory, name)
            digest.update(os.path.relpath(path, root).encode())
            digest.update(file_digest(path).encode())
    return digest.hexdigest()
