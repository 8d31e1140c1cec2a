"""trainer: tf.estimator, natively on TensorFlow 2.21.

The names mirror ``tf.estimator`` so a migration changes imports:
``tf.estimator.Estimator`` -> ``trainer.Estimator``.
"""

from trainer import experimental, export, feature_column, heads, hooks, keras, layers, metrics, optimizers
from trainer.canned import (BaselineClassifier, BaselineEstimator, BaselineRegressor,
                            BoostedTreesClassifier, BoostedTreesEstimator, BoostedTreesRegressor,
                            DNNClassifier, DNNEstimator, DNNLinearCombinedClassifier,
                            DNNLinearCombinedEstimator, DNNLinearCombinedRegressor, DNNRegressor,
                            KMeansClustering, LinearClassifier, LinearEstimator, LinearRegressor)
from trainer._context import get_global_step, get_or_create_global_step
from trainer.estimator import Estimator
from trainer.estimator_spec import EstimatorSpec
from trainer.exporter import BestExporter, Exporter, FinalExporter, LatestExporter, TFLiteExporter
from trainer.extenders import add_metrics
from trainer.hooks import (CheckpointSaverHook, CheckpointSaverListener, LoggingTensorHook,
                           NanLossDuringTrainingError, NanTensorHook, SecondOrStepTimer,
                           SessionRunArgs, SessionRunContext, SessionRunHook, SessionRunValues,
                           StepCounterHook, StopAtStepHook, SummarySaverHook)
from trainer.inputs import numpy_input_fn, pandas_input_fn
from trainer.keras import model_to_estimator
from trainer.mode_keys import ModeKeys
from trainer.run_config import RunConfig
from trainer.training import EvalSpec, TrainSpec, train_and_evaluate
from trainer.warm_starting import VocabInfo, WarmStartSettings

__all__ = [
    "Estimator", "EstimatorSpec", "ModeKeys", "RunConfig", "WarmStartSettings", "VocabInfo",
    "SessionRunHook", "SessionRunArgs", "SessionRunContext", "SessionRunValues",
    "SecondOrStepTimer", "StopAtStepHook", "LoggingTensorHook", "StepCounterHook",
    "NanTensorHook", "NanLossDuringTrainingError", "SummarySaverHook",
    "CheckpointSaverHook", "CheckpointSaverListener", "get_global_step",
    "get_or_create_global_step", "numpy_input_fn", "pandas_input_fn",
    "experimental", "export", "feature_column", "heads", "hooks", "keras", "layers", "metrics", "optimizers",
    "sklearn", "model_to_estimator", "TrainSpec", "EvalSpec", "train_and_evaluate",
    "Exporter", "LatestExporter", "BestExporter", "FinalExporter", "TFLiteExporter",
    "BaselineClassifier", "BaselineEstimator", "BaselineRegressor", "DNNClassifier",
    "DNNEstimator", "DNNRegressor", "DNNLinearCombinedClassifier", "DNNLinearCombinedEstimator",
    "DNNLinearCombinedRegressor", "LinearClassifier", "LinearEstimator", "LinearRegressor",
    "KMeansClustering", "add_metrics",
    "BoostedTreesClassifier", "BoostedTreesEstimator", "BoostedTreesRegressor",
]


def __getattr__(name):
    # scikit-learn is a dev extra: trainer.sklearn (its wrappers) loads on first use, so that
    # `import trainer` works without it.
    if name == "sklearn":
        import importlib

        return importlib.import_module("trainer.sklearn")
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
