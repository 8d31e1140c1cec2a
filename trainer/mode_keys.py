"""The three modes a `model_fn` is called in."""

__all__ = ["ModeKeys"]


class ModeKeys:
    """Standard names for model modes, as in tf.estimator.

    * ``TRAIN``: training mode.
    * ``EVAL``: testing mode.
    * ``PREDICT``: inference mode (the value is ``'infer'``, as tf.estimator had).

    Example:
        >>> ModeKeys.PREDICT
        'infer'
    """

    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"

    ALL = (TRAIN, EVAL, PREDICT)
