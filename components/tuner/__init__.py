"""The Tuner component: an Optuna search over a canned model's hyperparameters (TFX's Tuner)."""

from components.tuner.component import Pruner, Tuner, TunerParameters
from components.tuner.space import Choice, Range

__all__ = ["Tuner", "TunerParameters", "Pruner", "Choice", "Range"]
