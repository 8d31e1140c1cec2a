"""SessionRunHooks: the training loop's extension points (tf.estimator's protocol)."""

from trainer.hooks.basic_hooks import (CheckpointSaverHook, CheckpointSaverListener,
                                       LoggingTensorHook, NanLossDuringTrainingError,
                                       NanTensorHook, SecondOrStepTimer, StepCounterHook,
                                       StopAtStepHook, SummarySaverHook)
from trainer.hooks.session_run_hook import (SessionRunArgs, SessionRunContext, SessionRunHook,
                                            SessionRunValues)

__all__ = [
    "SessionRunHook", "SessionRunArgs", "SessionRunContext", "SessionRunValues",
    "SecondOrStepTimer", "StopAtStepHook", "LoggingTensorHook", "StepCounterHook",
    "NanLossDuringTrainingError", "NanTensorHook", "SummarySaverHook",
    "CheckpointSaverListener", "CheckpointSaverHook",
]
