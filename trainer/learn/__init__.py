"""TF.Learn (``tf.contrib.learn``) on the trainer core.

Code written for TF.Learn migrates by changing its import::

    from tensorflow.contrib import learn   ->   from trainer import learn

See docs/migration.md ("TF.Learn and Experiment") for the names and what is
not supported.
"""

from trainer.learn import datasets, learn_runner
from trainer.learn._data import infer_real_valued_columns_from_input
from trainer.learn.canned import (DNNClassifier, DNNLinearCombinedClassifier,
                                  DNNLinearCombinedRegressor, DNNRegressor, LinearClassifier,
                                  LinearRegressor)
from trainer.learn.estimator import Estimator, ModeKeys, ModelFnOps, optimize_loss
from trainer.learn.experiment import Experiment, ExportStrategy, make_export_strategy
from trainer.learn.sk_compat import SKCompat
from trainer.run_config import RunConfig

__all__ = [
    "Estimator", "ModelFnOps", "ModeKeys", "optimize_loss", "DNNClassifier", "DNNRegressor",
    "LinearClassifier", "LinearRegressor", "DNNLinearCombinedClassifier",
    "DNNLinearCombinedRegressor", "infer_real_valued_columns_from_input", "Experiment",
    "ExportStrategy", "make_export_strategy", "learn_runner", "datasets", "SKCompat",
    "RunConfig",
]
