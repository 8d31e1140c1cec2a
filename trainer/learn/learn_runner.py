"""TF.Learn's ``learn_runner.run``: build an `Experiment` and run one of its schedules."""

from __future__ import annotations

import inspect
import logging

from trainer.learn.experiment import Experiment
from trainer.run_config import RunConfig, TaskType

__all__ = ["run"]

log = logging.getLogger("trainer")

_SCHEDULES = ("train", "evaluate", "train_and_evaluate", "continuous_eval",
              "continuous_eval_on_train_data", "test", "run_std_server")


def default_schedule(config) -> str:
    """The schedule for this task: a single process trains and evaluates; on a
    ``TF_CONFIG`` cluster the chief and workers train, the evaluator task
    evaluates continuously and a ``ps`` task would run a server."""
    if config is None:
        return "train_and_evaluate"
    task_type = config.task_type
    if task_type == TaskType.EVALUATOR:
        return "continuous_eval"
    if task_type == TaskType.PS:
        return "run_std_server"
    if config.num_worker_replicas > 1:
        return "train"
    return "train_and_evaluate"


def run(experiment_fn, output_dir=None, schedule=None, run_config=None, hparams=None):
    """Makes an `Experiment` with ``experiment_fn`` and runs ``schedule`` on it.

    Two forms, as in TF.Learn:

    * ``run(experiment_fn, run_config=config, hparams=hparams)`` calls
      ``experiment_fn(run_config, hparams)``;
    * ``run(experiment_fn, output_dir)`` (the older form) calls
      ``experiment_fn(output_dir)``.

    ``schedule`` names an `Experiment` method (``'train_and_evaluate'``,
    ``'train'``, ``'evaluate'``, ``'continuous_eval'``, ``'test'``, ...); by
    default it comes from the run config's task (`default_schedule`). Returns
    what the schedule returns.

    Example:
        >>> # def experiment_fn(run_config, hparams):
        >>> #     estimator = learn.DNNClassifier(..., config=run_config)
        >>> #     return learn.Experiment(estimator, train_fn, eval_fn,
        >>> #                           train_steps=hparams["steps"])
        >>> # learn_runner.run(experiment_fn, run_config=trainer.RunConfig(model_dir="m"),
        >>> #                  hparams={"steps": 1000})
    """
    if not callable(experiment_fn):
        raise TypeError(f"learn_runner.run got experiment_fn={experiment_fn!r}; expected a "
                        "callable returning a learn.Experiment.")
    if schedule is not None and (not isinstance(schedule, str) or schedule not in _SCHEDULES):
        raise ValueError(f"learn_runner.run got schedule={schedule!r}; expected one of "
                         f"{list(_SCHEDULES)} (or None for the task's default).")
    if output_dir is not None:
        if run_config is not None or hparams is not None:
            raise ValueError(
                "learn_runner.run got output_dir with run_config/hparams; give output_dir for "
                "experiment_fn(output_dir), or run_config (and hparams) for "
                "experiment_fn(run_config, hparams).")
        experiment = experiment_fn(output_dir)
    else:
        if run_config is None:
            raise ValueError("learn_runner.run needs run_config= (a trainer.RunConfig) for "
                             "experiment_fn(run_config, hparams), or output_dir= for the older "
                             "experiment_fn(output_dir).")
        if not isinstance(run_config, RunConfig):
            raise TypeError(f"learn_runner.run got run_config={run_config!r}; expected a "
                            "trainer.RunConfig.")
        try:
            params = inspect.signature(experiment_fn).parameters.values()
            n_args = 2 if any(p.kind == p.VAR_POSITIONAL for p in params) else len(params)
        except (TypeError, ValueError):
            n_args = 2
        if n_args < 2:
            raise ValueError("learn_runner.run with run_config calls experiment_fn(run_config, "
                             "hparams); this experiment_fn takes fewer arguments. How to fix: "
                             "add the hparams argument, or pass output_dir= instead.")
        experiment = experiment_fn(run_config, hparams)
    if not isinstance(experiment, Experiment):
        raise TypeError(f"learn_runner.run: experiment_fn returned {type(experiment).__name__}; "
                        "expected a learn.Experiment.")
    if schedule is None:
        schedule = default_schedule(run_config if run_config is not None
                                    else experiment.estimator.config)
    log.info("learn_runner: running schedule %r.", schedule)
    return getattr(experiment, schedule)()
