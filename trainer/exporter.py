"""Exporters: write SavedModels from `train_and_evaluate`'s evaluations.

Each exports to ``<model_dir>/export/<name>/<timestamp>``:

* `LatestExporter` after every evaluation, keeping the newest
  ``exports_to_keep``;
* `BestExporter` only when the evaluation beats the best so far
  (``compare_fn``, lower ``loss`` by default; the best is recovered from the
  eval event files after a restart);
* `FinalExporter` once, after the final evaluation;
* `TFLiteExporter` a TF Lite flatbuffer, ``<timestamp>/model.tflite``, after every
  evaluation (or only the final one), keeping the newest ``exports_to_keep``.
"""

from __future__ import annotations

import logging
import os

import tensorflow as tf

from trainer.hooks.early_stopping import read_eval_metrics

__all__ = ["Exporter", "LatestExporter", "BestExporter", "FinalExporter", "TFLiteExporter"]

log = logging.getLogger("trainer")


class Exporter:
    """Base class: ``export(...)`` returns the export path, or None if it skipped."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{type(self).__name__} got name={name!r}; expected a non-empty name without '/'.")
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        raise NotImplementedError


class _SavedModelExporter(Exporter):
    def __init__(self, name, serving_input_receiver_fn, *, assets_extra=None, as_text=False,
                 exports_to_keep=5):
        super().__init__(name)
        if not callable(serving_input_receiver_fn):
            raise TypeError(
                f"{type(self).__name__} got serving_input_receiver_fn={serving_input_receiver_fn!r}; "
                "expected a callable, e.g. trainer.export.build_parsing_serving_input_receiver_fn(spec)."
            )
        if exports_to_keep is not None and (not isinstance(exports_to_keep, int) or exports_to_keep < 1):
            raise ValueError(
                f"{type(self).__name__} got exports_to_keep={exports_to_keep!r}; expected an int >= 1 or None."
            )
        self._receiver_fn = serving_input_receiver_fn
        self._assets_extra = assets_extra
        self._as_text = as_text
        self._exports_to_keep = exports_to_keep

    def _export(self, estimator, export_path, checkpoint_path):
        path = estimator.export_saved_model(export_path, self._receiver_fn,
                                            assets_extra=self._assets_extra, as_text=self._as_text,
                                            checkpoint_path=checkpoint_path).decode()
        self._garbage_collect(export_path)
        return path

    def _garbage_collect(self, export_path):
        if self._exports_to_keep is None or not tf.io.gfile.isdir(export_path):
            return
        versions = sorted(int(d.rstrip("/")) for d in tf.io.gfile.listdir(export_path)
                          if d.rstrip("/").isdigit())
        for version in versions[:-self._exports_to_keep]:
            tf.io.gfile.rmtree(os.path.join(export_path, str(version)))


class LatestExporter(_SavedModelExporter):
    """Exports after every evaluation; keeps the newest ``exports_to_keep``."""

    def __init__(self, name, serving_input_receiver_fn, assets_extra=None, as_text=False,
                 exports_to_keep=5):
        super().__init__(name, serving_input_receiver_fn, assets_extra=assets_extra,
                         as_text=as_text, exports_to_keep=exports_to_keep)

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        return self._export(estimator, export_path, checkpoint_path)


class FinalExporter(_SavedModelExporter):
    """Exports once, after the final evaluation."""

    def __init__(self, name, serving_input_receiver_fn, assets_extra=None, as_text=False):
        super().__init__(name, serving_input_receiver_fn, assets_extra=assets_extra,
                         as_text=as_text, exports_to_keep=None)

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        if not is_the_final_export:
            return None
        return self._export(estimator, export_path, checkpoint_path)


def _loss_smaller(best_eval_result, current_eval_result):
    for name, result in (("best_eval_result", best_eval_result),
                         ("current_eval_result", current_eval_result)):
        if not result or "loss" not in result:
            raise ValueError(
                f"BestExporter's default compare_fn needs 'loss' in {name}; got "
                f"{sorted(result or {})}. Pass compare_fn for another metric."
            )
    return current_eval_result["loss"] < best_eval_result["loss"]


class BestExporter(_SavedModelExporter):
    """Exports when an evaluation is the best so far.

    Args:
        compare_fn: ``(best_eval_result, current_eval_result) -> bool``, True
            when current is better. Default: lower ``loss``.
        event_file_pattern: where earlier evaluations are read from at the
            first call (relative to model_dir), so a restarted job remembers
            its best model.
    """

    def __init__(self, name="best_exporter", serving_input_receiver_fn=None,
                 event_file_pattern="eval/*.tfevents.*", compare_fn=_loss_smaller,
                 assets_extra=None, as_text=False, exports_to_keep=5):
        if not callable(compare_fn):
            raise TypeError(f"BestExporter got compare_fn={compare_fn!r}; expected a callable.")
        super().__init__(name, serving_input_receiver_fn, assets_extra=assets_extra,
                         as_text=as_text, exports_to_keep=exports_to_keep)
        self._compare_fn = compare_fn
        self._event_file_pattern = event_file_pattern
        self._best = None
        self._loaded = False

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        if not self._loaded:
            self._best = self._best_from_events(estimator, eval_result)
            self._loaded = True
        if self._best is None or self._compare_fn(self._best, eval_result):
            self._best = dict(eval_result)
            return self._export(estimator, export_path, checkpoint_path)
        return None

    def _best_from_events(self, estimator, current):
        if not self._event_file_pattern:
            return None
        eval_dir = os.path.dirname(os.path.join(estimator.model_dir, self._event_file_pattern))
        best = None
        for step, metrics in read_eval_metrics(eval_dir).items():
            if step >= int(current.get("global_step", 0)):
                continue  # the current evaluation itself is already in the files
            if best is None or self._compare_fn(best, metrics):
                best = metrics
        return best


class TFLiteExporter(_SavedModelExporter):
    """Writes ``<export_path>/<timestamp>/model.tflite`` (`trainer.export.export_tflite`).

    After every evaluation, or with ``final_only=True`` once after the final one; keeps the
    newest ``exports_to_keep``. ``serving_input_receiver_fn`` should be a raw-tensor receiver
    (`build_raw_serving_input_receiver_fn`); ``signature_keys``, ``quantize`` and
    ``select_tf_ops`` are `export_tflite`'s.

    Example:
        >>> # EvalSpec(eval_input_fn, exporters=[TFLiteExporter("lite", raw_receiver,
        >>> #          signature_keys=["predict"], quantize="dynamic")])
    """

    def __init__(self, name, serving_input_receiver_fn, signature_keys=("serving_default",), quantize=None,
                 select_tf_ops="auto", exports_to_keep=5, final_only=False):
        from trainer.export.tflite import QUANTIZATIONS

        super().__init__(name, serving_input_receiver_fn, exports_to_keep=exports_to_keep)
        if quantize not in QUANTIZATIONS:
            raise ValueError(f"TFLiteExporter got quantize={quantize!r}; expected one of {list(QUANTIZATIONS)}.")
        self._options = dict(signature_keys=list(signature_keys), quantize=quantize, select_tf_ops=select_tf_ops)
        self._final_only = bool(final_only)

    def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
        from trainer.export.saved_model import fresh_timestamp_dir
        from trainer.export.tflite import export_tflite

        if self._final_only and not is_the_final_export:
            return None
        version = fresh_timestamp_dir(export_path)
        try:
            export_tflite(estimator, self._receiver_fn, os.path.join(version, "model.tflite"),
                          checkpoint_path=checkpoint_path, **self._options)
        except BaseException:
            if tf.io.gfile.exists(version):
                tf.io.gfile.rmtree(version)
            raise
        self._garbage_collect(export_path)
        return version

