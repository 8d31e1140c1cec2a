"""`GANEstimator`: a generator and a discriminator trained against each other.

As TF-GAN's ``tfgan.estimator.GANEstimator``:

* TRAIN and EVAL: the input_fn yields ``(generator_inputs, real_data)`` (noise, and the data
  to imitate); PREDICT: ``generator_inputs`` only, and the predictions are the generated data.
* ``generator_fn(generator_inputs[, mode])`` returns generated data;
  ``discriminator_fn(data, generator_inputs[, mode])`` returns logits. The discriminator is
  called on the real data and on the generated data with *one* set of weights (its
  variables are shared through `trainer.variables.NameMark`, TF1's ``reuse=True``); write it
  with `trainer.layers` or Keras 3 layers (``import keras``; not tf_keras, which
  ``tf.keras`` is once tensorflow_transform set TF_USE_LEGACY_KERAS), built inside the function.
* Variables live under ``Generator/`` and ``Discriminator/``; each optimizer updates only its
  network's.
* One global step is ``discriminator_train_steps`` discriminator updates, then
  ``generator_train_steps`` generator updates, each on the other network's newest weights
  (`get_sequential_train_hooks`, the default, 1 and 1); `get_joint_train_hooks` updates both
  from the same forward pass.
* EVAL reports ``loss`` (the generator's), ``generator_loss`` and ``discriminator_loss``
  (means over the evaluation), plus ``get_eval_metric_ops_fn(gan_model)``'s metrics.
* The export's ``serving_default`` signature generates: it takes the generator inputs.

Example:
    >>> from trainer import gan
    >>> # est = gan.GANEstimator(generator_fn=gen, discriminator_fn=disc,
    >>> #     generator_loss_fn=gan.losses.modified_generator_loss,
    >>> #     discriminator_loss_fn=gan.losses.modified_discriminator_loss,
    >>> #     generator_optimizer=trainer.optimizers.Adam(1e-3),
    >>> #     discriminator_optimizer=trainer.optimizers.Adam(1e-3))
    >>> # est.train(lambda: tf.data.Dataset.zip((noise, real)).batch(64), steps=1000)
"""

from __future__ import annotations

import collections
import inspect

import tensorflow as tf

from trainer import metrics as metrics_lib
from trainer import optimizers
from trainer._context import get_global_step
from trainer.estimator import Estimator
from trainer.estimator_spec import EstimatorSpec
from trainer.export.export_output import PredictOutput
from trainer.mode_keys import ModeKeys
from trainer.variables import NameMark, current_store, unique_scope_name

__all__ = ["GANEstimator", "GANModel", "GANTrainSteps", "get_sequential_train_hooks", "get_joint_train_hooks"]

GANModel = collections.namedtuple("GANModel", [
    "generator_inputs", "generated_data", "generator_variables", "generator_scope", "generator_fn",
    "real_data", "discriminator_real_outputs", "discriminator_gen_outputs", "discriminator_variables",
    "discriminator_scope", "discriminator_fn"])
GANModel.__doc__ = "What the loss functions see: TF-GAN's GANModel fields."

GANTrainSteps = collections.namedtuple("GANTrainSteps", ["generator_train_steps", "discriminator_train_steps"])
GANTrainSteps.__doc__ = "How many updates of each network one global step makes (TF-GAN's)."


class _Schedule(collections.namedtuple("_Schedule", ["joint", "steps"])):
    """What `get_sequential_train_hooks` / `get_joint_train_hooks` return (TF-GAN returned a
    function making hooks; here the training step itself alternates)."""


def get_sequential_train_hooks(train_steps=GANTrainSteps(1, 1)):
    """Per global step: ``discriminator_train_steps`` updates of the discriminator, then
    ``generator_train_steps`` of the generator, each seeing the other's newest weights."""
    for field in train_steps._fields if isinstance(train_steps, GANTrainSteps) else ():
        value = getattr(train_steps, field)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"GANTrainSteps got {field}={value!r}; expected an int >= 1.")
    if not isinstance(train_steps, GANTrainSteps):
        raise TypeError(f"get_sequential_train_hooks got {train_steps!r}; expected GANTrainSteps(g, d).")
    return _Schedule(False, train_steps)


def get_joint_train_hooks(train_steps=GANTrainSteps(1, 1)):
    """Both networks updated from one forward pass per global step (only ``GANTrainSteps(1, 1)``)."""
    if tuple(train_steps) != (1, 1):
        raise NotImplementedError(
            f"get_joint_train_hooks(train_steps={tuple(train_steps)}) is not supported: joint updates "
            "make one update of each network per step. Use get_sequential_train_hooks for other counts.")
    return _Schedule(True, GANTrainSteps(1, 1))


def _takes_mode(fn) -> bool:
    try:
        return "mode" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class GANEstimator(Estimator):
    """An Estimator for a GAN; see the module docstring.

    Args:
        model_dir, config, params, warm_start_from: As `trainer.Estimator`.
        generator_fn: ``(generator_inputs[, mode]) -> generated data``.
        discriminator_fn: ``(data, generator_inputs[, mode]) -> logits``.
        generator_loss_fn, discriminator_loss_fn: ``(GANModel) -> scalar`` (`trainer.gan.losses`).
        generator_optimizer, discriminator_optimizer: optimizers (names, `trainer.optimizers`
            instances, Keras optimizers, or callables returning one).
        get_hooks_fn: `get_sequential_train_hooks(...)` (default, 1:1) or `get_joint_train_hooks()`.
        get_eval_metric_ops_fn: ``(GANModel) -> {name: metric}`` added to EVAL.
        add_summaries, use_loss_summaries, is_chief: TF-GAN's; summaries of the two losses are
            written when ``use_loss_summaries`` (default); other summary types are not
            supported (``add_summaries`` must be None).
    """

    def __init__(self, model_dir=None, generator_fn=None, discriminator_fn=None, generator_loss_fn=None,
                 discriminator_loss_fn=None, generator_optimizer=None, discriminator_optimizer=None,
                 get_hooks_fn=None, get_eval_metric_ops_fn=None, add_summaries=None, use_loss_summaries=True,
                 config=None, params=None, warm_start_from=None, is_chief=True):
        for name, value in (("generator_fn", generator_fn), ("discriminator_fn", discriminator_fn),
                            ("generator_loss_fn", generator_loss_fn),
                            ("discriminator_loss_fn", discriminator_loss_fn)):
            if not callable(value):
                raise TypeError(f"GANEstimator got {name}={value!r}; expected a callable.")
        for name, value in (("generator_optimizer", generator_optimizer),
                            ("discriminator_optimizer", discriminator_optimizer)):
            if value is None:
                raise ValueError(f"GANEstimator got {name}=None; expected an optimizer, e.g. "
                                 "trainer.optimizers.Adam(1e-3).")
        if add_summaries is not None:
            raise NotImplementedError(f"GANEstimator(add_summaries={add_summaries!r}) is not supported; "
                                      "leave it None (the losses are summarized with use_loss_summaries).")
        schedule = get_sequential_train_hooks() if get_hooks_fn is None else get_hooks_fn
        if not isinstance(schedule, _Schedule):
            raise NotImplementedError(
                f"GANEstimator(get_hooks_fn={get_hooks_fn!r}) is not supported: TF-GAN's hooks ran extra "
                "session runs, which this loop has not. Use trainer.gan.get_sequential_train_hooks("
                "GANTrainSteps(g, d)) or trainer.gan.get_joint_train_hooks().")
        if config is not None and (config.train_distribute is not None or config.eval_distribute is not None):
            raise NotImplementedError(
                "GANEstimator under RunConfig(train_distribute=/eval_distribute=) is not supported: its two "
                "optimizers compute their own gradients, which are not reduced across replicas.")
        self._gan = dict(generator_fn=generator_fn, discriminator_fn=discriminator_fn,
                         generator_loss_fn=generator_loss_fn, discriminator_loss_fn=discriminator_loss_fn,
                         generator_optimizer=generator_optimizer,
                         discriminator_optimizer=discriminator_optimizer, schedule=schedule,
                         get_eval_metric_ops_fn=get_eval_metric_ops_fn, use_loss_summaries=use_loss_summaries)
        del is_chief  # the chief is the RunConfig's
        super().__init__(self._gan_model_fn, model_dir=model_dir, config=config, params=params,
                         warm_start_from=warm_start_from)

    # -- the model_fn -------------------------------------------------------------------------
    def _gan_model_fn(self, features, labels, mode):
        gan = self._gan
        generator_scope = unique_scope_name("Generator")
        discriminator_scope = unique_scope_name("Discriminator")

        def generate():
            with tf.name_scope(generator_scope + "/"):
                if _takes_mode(gan["generator_fn"]):
                    return gan["generator_fn"](features, mode=mode)
                return gan["generator_fn"](features)

        def discriminate(data):
            with tf.name_scope(discriminator_scope + "/"):
                if _takes_mode(gan["discriminator_fn"]):
                    return gan["discriminator_fn"](data, features, mode=mode)
                return gan["discriminator_fn"](data, features)

        generator_mark = NameMark()
        generated = generate()
        if mode == ModeKeys.PREDICT:
            outputs = generated if isinstance(generated, dict) else {"generated": generated}
            return EstimatorSpec(mode, predictions=generated,
                                 export_outputs={"serving_default": PredictOutput(outputs)})
        if labels is None:
            raise ValueError("GANEstimator's input_fn must yield (generator_inputs, real_data) in TRAIN and "
                             "EVAL; it yielded generator inputs only.")
        real = labels
        discriminator_mark = NameMark()
        with discriminator_mark.replay():
            real_outputs = discriminate(real)
        with discriminator_mark.replay():
            gen_outputs = discriminate(generated)
        gan_model = self._gan_model(features, generated, real, real_outputs, gen_outputs,
                                    generator_scope, discriminator_scope)
        g_loss = tf.identity(gan["generator_loss_fn"](gan_model), name="generator_loss")
        d_loss = tf.identity(gan["discriminator_loss_fn"](gan_model), name="discriminator_loss")
        if gan["use_loss_summaries"]:
            tf.summary.scalar("generator_loss", g_loss)
            tf.summary.scalar("discriminator_loss", d_loss)
        if mode == ModeKeys.EVAL:
            metrics = {"generator_loss": metrics_lib.mean(g_loss), "discriminator_loss": metrics_lib.mean(d_loss)}
            if gan["get_eval_metric_ops_fn"] is not None:
                metrics.update(gan["get_eval_metric_ops_fn"](gan_model))
            return EstimatorSpec(mode, loss=g_loss, eval_metric_ops=metrics)
        train_op = self._train_op(gan_model, lambda: self._forward(gan_model, generate, discriminate,
                                                                   generator_mark, discriminator_mark))
        return EstimatorSpec(mode, loss=g_loss, train_op=train_op)

    def _gan_model(self, features, generated, real, real_outputs, gen_outputs, g_scope, d_scope):
        store = current_store()
        variables = {} if store is None else store.trainable_variables_by_key()
        return GANModel(
            generator_inputs=features, generated_data=generated,
            generator_variables=[v for k, v in variables.items() if k.startswith(g_scope + "/")],
            generator_scope=g_scope, generator_fn=self._gan["generator_fn"], real_data=real,
            discriminator_real_outputs=real_outputs, discriminator_gen_outputs=gen_outputs,
            discriminator_variables=[v for k, v in variables.items() if k.startswith(d_scope + "/")],
            discriminator_scope=d_scope, discriminator_fn=self._gan["discriminator_fn"])

    def _train_op(self, gan_model, forward):
        """``forward()`` recomputes the GANModel (replaying both networks' variables)."""
        gan = self._gan
        g_vars, d_vars = gan_model.generator_variables, gan_model.discriminator_variables
        for network, found in (("generator", g_vars), ("discriminator", d_vars)):
            if not found:
                raise ValueError(f"GANEstimator's {network}_fn created no trainable variables; build its "
                                 "layers inside the function (trainer.layers or Keras 3 layers).")
        networks = {"generator": (gan["generator_loss_fn"], optimizers.get(gan["generator_optimizer"]), g_vars),
                    "discriminator": (gan["discriminator_loss_fn"], optimizers.get(gan["discriminator_optimizer"]),
                                      d_vars)}
        schedule = gan["schedule"]
        # The losses the model_fn reports were computed outside these tapes; each update
        # recomputes its own forward pass, so it sees the other network's newest weights.
        if schedule.joint:
            with tf.GradientTape(persistent=True) as tape:
                model = forward()
                losses = {network: loss_fn(model) for network, (loss_fn, _, _) in networks.items()}
            ops = [optimizer.apply_gradients(_pairs(tape.gradient(losses[network], variables), variables, network))
                   for network, (_, optimizer, variables) in sorted(networks.items())]
            with tf.control_dependencies(ops):
                return get_global_step().assign_add(1)

        def update(network, after):
            loss_fn, optimizer, variables = networks[network]
            with tf.control_dependencies([after]):
                with tf.GradientTape() as tape:
                    loss = loss_fn(forward())
                return optimizer.apply_gradients(_pairs(tape.gradient(loss, variables), variables, network))

        last = tf.no_op()
        for network, count in (("discriminator", schedule.steps.discriminator_train_steps),
                               ("generator", schedule.steps.generator_train_steps)):
            for _ in range(count):
                last = update(network, last)
        with tf.control_dependencies([last]):
            return get_global_step().assign_add(1)

    @staticmethod
    def _forward(gan_model, generate, discriminate, generator_mark, discriminator_mark):
        store = current_store()
        before = set(store.variables) if store is not None else set()
        with generator_mark.replay():
            generated = generate()
        with discriminator_mark.replay():
            real_outputs = discriminate(gan_model.real_data)
        with discriminator_mark.replay():
            gen_outputs = discriminate(generated)
        new = sorted(set(store.variables) - before) if store is not None else []
        if new:
            raise ValueError(
                f"GANEstimator: calling the generator or discriminator again created new variables {new[:4]} "
                "instead of reusing its own, so its weights cannot be shared. A tf_keras layer does this "
                "(tf.keras is tf_keras when TF_USE_LEGACY_KERAS=1, which importing tensorflow_transform "
                "sets). How to fix: build the networks with trainer.layers or Keras 3 (import keras; "
                "keras.layers.Dense(...)).")
        return gan_model._replace(generated_data=generated, discriminator_real_outputs=real_outputs,
                                  discriminator_gen_outputs=gen_outputs)


def _pairs(grads, variables, network):
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    if not pairs:
        raise ValueError(f"GANEstimator: the {network} loss has no gradient for the {network}'s variables; "
                         f"does the {network} loss function read discriminator_gen_outputs/real_outputs?")
    return pairs
