"""TF-GAN's estimator on `trainer` (``tfgan.estimator.GANEstimator``, ``tfgan.losses``).

Migrating: ``import tensorflow_gan as tfgan`` → ``from trainer import gan as tfgan``; then
``tfgan.estimator.GANEstimator``, ``tfgan.losses.*`` and ``tfgan.GANTrainSteps`` /
``get_sequential_train_hooks`` / ``get_joint_train_hooks`` keep their names.
"""

from trainer.gan import estimator, losses
from trainer.gan.estimator import (GANEstimator, GANModel, GANTrainSteps, get_joint_train_hooks,
                                   get_sequential_train_hooks)

__all__ = ["GANEstimator", "GANModel", "GANTrainSteps", "get_joint_train_hooks", "get_sequential_train_hooks",
           "losses", "estimator"]
