"""Tuner's executor: an Optuna study whose trials train the canned model through the Trainer's code.

A trial asks the sampler for a value of each hyperparameter in the space, applies them
to the canned config (`apply_hyperparameters`), builds the Estimator and input_fns with
`canned_trainer_fn` (what the Trainer trains) in its own model_dir under the work dir,
then trains to ``steps`` in chunks of ``eval_every``: after each chunk it evaluates,
reports the metric at that global step to the pruner and stops if the pruner says so.
Its value is the metric at ``steps``. A NaN loss or metric fails only that trial.

The study's storage is a SQLAlchemy URL given to the component, or by default the SQLite
file ``studies.sqlite`` in the Tuner's node directory (``<root>/<Tuner id>/``, the parent of
its outputs' directories), which outlives every execution: a killed Tuner, or a rerun with
more trials, finds its study there (`components.tuner.study`). Not the pipeline's metadata
database: the runner does not hand executors its URL, and that database's Alembic version
table (``alembic_version``) is the one Optuna's schema uses too. Trials train in the
execution's work dir, which survives a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from typing import Any

from components.base import ComponentError, ExecutionContext, parameters_to_json
from components.trainer.canned_config import canned_trainer_fn
from components.trainer.fn_args import FnArgs
from components.trainer.hyperparameters import apply_hyperparameters, write_best_hyperparameters
from components.tuner import study as studies
from components.tuner.component import code_digest
from components.tuner.space import decode, suggest

STUDY_FILE = "studies.sqlite"


class TrialError(RuntimeError):
    """A trial that cannot produce a value (a NaN loss or metric): it fails, the study goes on."""


def study_name(ctx: ExecutionContext) -> str:
    """``<component id>-<digest>`` of what decides a trial's result; the trial count, storage and
    name are left out, so a rerun with more trials continues the same study."""
    params = ctx.parameters
    key = dataclasses.replace(params, trials=1, storage=None, study_name=None)
    inputs = {k: [a.id if a.id is not None else a.uri for a in v] for k, v in sorted(ctx.inputs.items())}
    material = json.dumps([parameters_to_json(key), inputs, code_digest()], sort_keys=True)
    return f"{ctx.component_id}-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def default_study_file(ctx: ExecutionContext) -> str:
    """``<root>/<Tuner id>/studies.sqlite``: outputs live in ``<root>/<id>/<output key>/<execution id>``."""
    node_dir = os.path.dirname(os.path.dirname(os.path.abspath(ctx.outputs["best_hyperparameters"].uri)))
    return os.path.join(node_dir, STUDY_FILE)


def run(ctx: ExecutionContext) -> None:
    params = ctx.parameters
    examples, transform_graph = ctx.input("examples"), ctx.input("transform_graph")
    for split in (params.train_split, params.eval_split):
        if split not in examples.split_names:
            raise ComponentError(
                f"Tuner got examples with splits {examples.split_names}; expected split {split!r}. "
                "How to fix: set train_split/eval_split to existing splits.")
    url = params.storage or f"sqlite:///{default_study_file(ctx)}"
    name = params.study_name or study_name(ctx)
    study, done = _open_study(ctx, params, url, name)
    trials_dir = os.path.join(ctx.work_dir or ctx.temp_dir, "trials")
    shutil.rmtree(trials_dir, ignore_errors=True)  # model_dirs of interrupted trials: retried from scratch
    if params.trials > done:
        objective = _Objective(ctx, params, examples, transform_graph.uri, trials_dir)
        study.optimize(objective, n_trials=params.trials - done, catch=(TrialError,),
                       callbacks=[studies.stop_after(params.trials)])
    _publish(ctx, params, study, name, url)


def _open_study(ctx: ExecutionContext, params: Any, url: str, name: str) -> tuple[Any, int]:
    """The study, its interrupted trials enqueued again, and how many trials had finished."""
    import optuna

    label = studies.storage_label(url)
    try:
        storage = studies.open_storage(url, heartbeat=params.storage is not None)
    except RuntimeError as e:  # Optuna's schema check
        raise ComponentError(
            f"Tuner got storage={label!r}; Optuna cannot use it: {e} A database that holds another "
            "Alembic-versioned schema (the pipeline's metadata store does) cannot host Optuna's. How to fix: "
            "give the study a database of its own, or leave storage unset.") from None
    study = optuna.create_study(study_name=name, storage=storage, direction=params.direction, load_if_exists=True)
    if study.direction.name.lower() != params.direction:
        raise ComponentError(
            f"Tuner got study_name={name!r}, a study in {label} that {study.direction.name.lower()}s; expected "
            f"one that {params.direction}s {params.metric}. How to fix: use another study_name.")
    recovered = studies.recover_interrupted(study, storage)
    if recovered:
        ctx.report(f"retrying trials {recovered}, interrupted before they finished")
    done = studies.finished(study)
    ctx.report(f"study {name} in {label}: {done} of {params.trials} trials finished before this run")
    study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(params, len(study.trials)),
                              pruner=_pruner(params))
    return study, done


def _sampler(params: Any, previous_trials: int) -> Any:
    import optuna

    seed = None if params.seed is None else params.seed + previous_trials
    if params.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna's default of 10 random start-up trials would make a small budget a random search.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, params.trials // 2)))


def _pruner(params: Any) -> Any:
    import optuna

    pruner = params.pruner
    if pruner.kind == "none":
        return optuna.pruners.NopPruner()
    if pruner.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=params.eval_every, max_resource=params.steps)
    return optuna.pruners.MedianPruner(n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_steps)


def evaluation_steps(steps: int, every: int) -> list[int]:
    """The global steps after which a trial evaluates: every ``every`` steps, and at ``steps``.

    Example:
        >>> evaluation_steps(300, 100), evaluation_steps(250, 100)
        ([100, 200, 300], [100, 200, 250])
    """
    return sorted({*range(every, steps, every), steps})


class _Objective:
    """Trains and evaluates one trial; returns the metric at the last step."""

    def __init__(self, ctx: ExecutionContext, params: Any, examples: Any, transform_graph_path: str,
                 trials_dir: str):
        self.ctx, self.params, self.trials_dir = ctx, params, trials_dir
        self.fn_args = FnArgs(
            train_files=(examples.file_pattern(params.train_split),),
            eval_files=(examples.file_pattern(params.eval_split),),
            transform_graph_path=transform_graph_path, schema_path="", train_steps=params.steps,
            eval_steps=params.eval_steps, serving_model_dir="", model_run_dir="",
            label_key=params.canned.feature_spec.label.name)

    def __call__(self, trial: Any) -> float:
        import optuna

        import trainer

        studies.claim(trial)
        params = self.params
        values = {name: suggest(trial, name, dimension) for name, dimension in params.space.items()}
        model_dir = os.path.join(self.trials_dir, str(trial.number))
        fn_args = dataclasses.replace(self.fn_args, model_run_dir=model_dir, hyperparameters=values)
        self.ctx.report(f"trial {trial.number}: {values}")
        started = time.monotonic()
        try:
            spec = canned_trainer_fn(apply_hyperparameters(params.canned, values), fn_args)
            estimator, train_spec, eval_spec = spec["estimator"], spec["train_spec"], spec["eval_spec"]
            value = math.nan
            for step in evaluation_steps(params.steps, params.eval_every):
                try:
                    estimator.train(train_spec.input_fn, max_steps=step)
                except trainer.NanLossDuringTrainingError as e:
                    raise self._fail(trial, f"NaN loss: {e}") from None
                value = float(estimator.evaluate(eval_spec.input_fn, steps=eval_spec.steps)[params.metric])
                if not math.isfinite(value):
                    raise self._fail(trial, f"{params.metric}={value} at step {step}")
                trial.report(value, step)
                if step < params.steps and trial.should_prune():
                    self.ctx.report(f"trial {trial.number}: pruned at step {step} ({params.metric}={value:.4g})")
                    raise optuna.TrialPruned(f"{params.metric}={value:.4g} at step {step}")
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)
        self.ctx.report(f"trial {trial.number}: {params.metric}={value:.4g} in {time.monotonic() - started:.1f} s")
        return value

    def _fail(self, trial: Any, problem: str) -> TrialError:
        trial.set_user_attr(studies.ERROR, problem)
        self.ctx.report(f"trial {trial.number} failed: {problem}")
        return TrialError(problem)


def _publish(ctx: ExecutionContext, params: Any, study: Any, name: str, url: str) -> None:
    from optuna.trial import TrialState

    artifact = ctx.outputs["best_hyperparameters"]
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    counts = {k: v for k, v in counts.items() if v}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    errors = [t.user_attrs[studies.ERROR] for t in trials if studies.ERROR in t.user_attrs]
    if not complete:
        raise ComponentError(
            f"Tuner got no complete trial in study {name!r} ({counts}); first error: "
            f"{errors[0] if errors else 'none'}. How to fix: narrow the space (e.g. lower learning rates), "
            "add steps, or loosen the pruner (startup_trials).")
    best = study.best_trial

    def decoded(key: str, value: Any) -> Any:
        return decode(params.space[key], value) if key in params.space else value

    values = {key: decoded(key, value) for key, value in best.params.items()}
    write_best_hyperparameters(artifact, values, metric=params.metric, direction=params.direction,
                               value=best.value, trial=best.number, study_name=name)
    studies.write_table(artifact.trials_path, trials, decoded)
    durations = [t.duration.total_seconds() for t in trials if t.duration is not None
                 and t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    artifact.properties.update(
        values=values, metric=params.metric, direction=params.direction, best_value=best.value,
        best_trial=best.number, trials=counts, study_name=name, storage=studies.storage_label(url),
        mean_trial_seconds=round(sum(durations) / len(durations), 3) if durations else None)
    ctx.report(f"best trial {best.number}: {params.metric}={best.value:.4g} with {values}")
