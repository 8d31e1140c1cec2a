"""The Trainer component: an Estimator trained on Transform's output, exported for raw requests."""

from components.trainer.canned_config import CannedEstimatorConfig
from components.trainer.component import Trainer, TrainerParameters
from components.trainer.fn_args import FnArgs, transformed_input_fn
from components.trainer.model_paths import checkpoint_path, serving_model_path
from components.trainer.serving_export import TFLiteOptions

__all__ = ["Trainer", "TrainerParameters", "CannedEstimatorConfig", "TFLiteOptions", "FnArgs", "transformed_input_fn",
           "serving_model_path", "checkpoint_path"]
