"""SessionRunHooks: the training loop's extension points (tf.estimator's protocol)."""

from trainer.hooks.basic_hooks import (CheckpointSaverHook, CheckpointSaverListener,
                                       LoggingTensorHook, NanLossDuringTrainingError,
                                       NanTensorHook, SecondOrStepTimer, StepCounterHook,
                                       StopAtStepHook, SummarySaverHook)
from trainer.hooks.early_stopping import (make_early_stopping_hook, read_eval_metrics,
                                          stop_if_higher_hook, stop_if_lower_hook,
                                          stop_if_no_decrease_hook, stop_if_no_increase_hook)
from trainer.hooks.session_run_hook import (SessionRunArgs, SessionRunContext, SessionRunHook,
                                            SessionRunValues)

__all__ = [
    "SessionRunHook", "SessionRunArgs", "SessionRunContext", "SessionRunValues",
    "SecondOrStepTimer", "StopAtStepHook", "LoggingTensorHook", "StepCounterHook",
    "NanLossDuringTrainingError", "NanTensorHook", "SummarySaverHook",
    "CheckpointSaverListener", "CheckpointSaverHook", "make_early_stopping_hook",
    "read_eval_metrics", "stop_if_higher_hook", "stop_if_lower_hook",
    "stop_if_no_decrease_hook", "stop_if_no_increase_hook",
]
