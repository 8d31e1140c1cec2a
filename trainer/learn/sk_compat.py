"""TF.Learn's ``SKCompat``: scikit-learn style ``fit``/``score``/``predict`` on an Estimator."""

from __future__ import annotations

from trainer.learn.estimator import Estimator

__all__ = ["SKCompat"]


class SKCompat:
    """Wraps a `learn.Estimator`: ``fit(x, y)`` returns self, ``score`` evaluates,
    ``predict(x)`` returns all predictions at once (an array or dict of arrays)."""

    def __init__(self, estimator):
        if not isinstance(estimator, Estimator):
            raise TypeError(f"SKCompat got estimator={estimator!r}; expected a learn.Estimator.")
        self._estimator = estimator

    @property
    def estimator(self):
        return self._estimator

    def fit(self, x, y, batch_size=128, steps=None, max_steps=None, monitors=None):
        self._estimator.fit(x=x, y=y, batch_size=batch_size, steps=steps, max_steps=max_steps,
                            monitors=monitors)
        return self

    def score(self, x, y, batch_size=128, steps=None, metrics=None, name=None):
        return self._estimator.evaluate(x=x, y=y, batch_size=batch_size, steps=steps,
                                        metrics=metrics, name=name)

    def predict(self, x, batch_size=128, outputs=None):
        return Estimator.predict(self._estimator, x=x, batch_size=batch_size, outputs=outputs,
                                 as_iterable=False)
