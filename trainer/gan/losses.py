"""GAN losses on a `GANModel`, as TF-GAN's ``tfgan.losses`` (its GANModel-taking forms).

Each takes the `GANModel` and returns a scalar, averaged over the batch:

* minimax (Goodfellow et al. 2014): the discriminator minimizes
  ``-log D(x) - log(1 - D(G(z)))``; the generator ``log(1 - D(G(z)))``.
* modified (non-saturating): the generator minimizes ``-log D(G(z))``; the discriminator's
  loss is minimax's.
* Wasserstein (Arjovsky et al. 2017): the critic minimizes ``D(G(z)) - D(x)``; the generator
  ``-D(G(z))``. Keep the critic Lipschitz yourself (weight clipping in its optimizer, or a
  gradient penalty in your own loss function).

``label_smoothing`` (minimax/modified discriminator) uses ``1 - label_smoothing`` as the real
label, as TF-GAN does.

Example:
    >>> # GANEstimator(..., generator_loss_fn=losses.modified_generator_loss,
    >>> #              discriminator_loss_fn=losses.modified_discriminator_loss)
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["minimax_generator_loss", "minimax_discriminator_loss", "modified_generator_loss",
           "modified_discriminator_loss", "wasserstein_generator_loss", "wasserstein_discriminator_loss"]


def _bce(labels_value, logits):
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), labels_value),
                                                                   logits=logits))


def minimax_discriminator_loss(gan_model, label_smoothing=0.25):
    """``-log D(x) - log(1 - D(G(z)))`` with the real label ``1 - label_smoothing``."""
    return (_bce(1.0 - label_smoothing, gan_model.discriminator_real_outputs)
            + _bce(0.0, gan_model.discriminator_gen_outputs))


def minimax_generator_loss(gan_model):
    """``log(1 - D(G(z)))``: saturates early in training (see the modified loss)."""
    return -_bce(0.0, gan_model.discriminator_gen_outputs)


def modified_discriminator_loss(gan_model, label_smoothing=0.25):
    """The same as `minimax_discriminator_loss`."""
    return minimax_discriminator_loss(gan_model, label_smoothing)


def modified_generator_loss(gan_model):
    """``-log D(G(z))`` (non-saturating)."""
    return _bce(1.0, gan_model.discriminator_gen_outputs)


def wasserstein_discriminator_loss(gan_model):
    """``D(G(z)) - D(x)`` (the critic's loss)."""
    return (tf.reduce_mean(tf.cast(gan_model.discriminator_gen_outputs, tf.float32))
            - tf.reduce_mean(tf.cast(gan_model.discriminator_real_outputs, tf.float32)))


def wasserstein_generator_loss(gan_model):
    """``-D(G(z))``."""
    return -tf.reduce_mean(tf.cast(gan_model.discriminator_gen_outputs, tf.float32))
