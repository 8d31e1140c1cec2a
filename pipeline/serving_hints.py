"""After a run that pushed a model: sample requests and how to serve and query it.

``python -m pipeline run`` ends with these lines when a Pusher pushed a version. The
sample requests are the first rows of the eval split as the model will get them,
written next to the run's root, so the printed client command works as is and every
feature keeps the dtype the model parses. They hold only the raw features the served
model reads (the Model's ``serving_raw_features`` property, which the Trainer records):
no label, and no raw column the label is derived from (taxi's ``tips`` behind
``big_tipper``). A Model without that property (a ``run_fn`` Trainer, an older run) gets
the rows without the label column.

Example:
    >>> hints = serving_hints(result, root="runs/taxi")  # doctest: +SKIP
    >>> print("\\n".join(hints.lines()))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from collections.abc import Iterable
from typing import Any

from components import fileio

SAMPLE_ROWS = 3
_METHODS = {"tensorflow/serving/classify": "classify", "tensorflow/serving/regress": "regress",
            "tensorflow/serving/predict": "predict"}


@dataclasses.dataclass(frozen=True)
class ServingHints:
    """What the CLI prints for one pushed model.

    Attributes:
        model_name: The served model name (the push directory's name).
        model_base_path: The directory holding the numbered versions.
        version: The version just pushed.
        method: ``classify``, ``regress`` or ``predict`` (the serving_default signature's API).
        requests_file: A TFRecord of sample tf.Examples, or None when none could be written.
        first_example: The first sample request as TF Serving REST JSON, or None.
    """

    model_name: str
    model_base_path: str
    version: int
    method: str
    requests_file: str | None = None
    first_example: dict[str, Any] | None = None
    pushed_now: bool = True

    def lines(self, python: str = ".venv/bin/python") -> list[str]:
        base = shlex.quote(self.model_base_path)
        where = f"{self.model_name} version {self.version} to {self.model_base_path}/{self.version}"
        lines = [f"Pushed {where}." if self.pushed_now else
                 f"Nothing new to push: {where} was pushed by an earlier run."]
        if "://" in self.model_base_path:  # python -m serving reads local directories only
            lines += ["Serve it with TF Serving, which reads that URL itself (gRPC 8500, REST 8501; "
                      "the tensorflow/serving container, see serving/deploy/):",
                      f"  tensorflow_model_server --model_name={self.model_name} --model_base_path={base} "
                      "--port=8500 --rest_api_port=8501",
                      "  (python -m serving reads local directories only: copy the version down first.)"]
        else:
            lines += ["Serve it (gRPC 8500, REST 8501; or the tensorflow/serving container, see serving/deploy/):",
                      f"  {python} -m serving --model_name={self.model_name} --model_base_path={base} "
                      "--port=8500 --rest_api_port=8501"]
        lines.append("Query it from another shell:")
        rows = shlex.quote(self.requests_file) if self.requests_file else "ROWS.csv|.jsonl|.tfrecord"
        lines.append(f"  {python} -m serving.client {self.method} --server 127.0.0.1:8500 "
                     f"--model {self.model_name} --examples {rows}")
        if self.first_example is not None and self.method in ("classify", "regress"):
            body = json.dumps({"examples": [self.first_example]})
            lines.append(f"  curl -s -X POST http://127.0.0.1:8501/v1/models/{self.model_name}:{self.method} "
                         f"-d {shlex.quote(body)}")
        return lines


def this_python(cwd: str | None = None) -> str:
    """How to call the interpreter running now, for a printed command: relative to ``cwd``
    when it lives below it (``.venv/bin/python``), else its absolute path."""
    import sys

    exe = sys.executable or "python3"
    here = os.path.abspath(cwd or os.getcwd())
    if os.path.abspath(exe).startswith(here + os.sep):
        return shlex.quote(os.path.relpath(exe, here))
    return shlex.quote(exe)


def _serving_method(saved_model_dir: str) -> str:
    from trainer.export.saved_model import signature_defs

    signature = signature_defs(saved_model_dir).get("serving_default")
    return _METHODS.get(signature.method_name, "predict") if signature is not None else "predict"


def _rest_json(example: Any) -> dict[str, Any]:
    row = {}
    for name, feature in sorted(example.features.feature.items()):
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if kind == "bytes_list":
            values = [v.decode("utf-8", "replace") for v in values]
        elif kind == "float_list":
            # float32 shown in its shortest form, and 360.0 rather than 360 (REST reads that as a float).
            values = [float(f"{v:.7g}") for v in values]
        if values:
            row[name] = values[0] if len(values) == 1 else values
    return row


def _write_requests(examples: Any, label_key: str | None, path: str,
                    keep: Iterable[str] | None = None) -> dict[str, Any] | None:
    """Writes the first eval rows as an uncompressed TFRecord; returns the first as JSON.

    ``keep``: the only features to write (the served model's raw inputs); None: every
    feature but ``label_key``.
    """
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(examples.file_pattern("eval")))  # local, or under a URL root
    if not files:
        return None
    kept = None if keep is None else set(keep)
    records = []
    for serialized in tf.data.TFRecordDataset(files[0], compression_type="GZIP").take(SAMPLE_ROWS):
        example = tf.train.Example.FromString(serialized.numpy())
        for name in list(example.features.feature):
            if (kept is not None and name not in kept) or name == label_key:
                del example.features.feature[name]
        records.append(example)
    if not records:
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for example in records:
            writer.write(example.SerializeToString())
    return _rest_json(records[0])


def serving_hints(outputs: dict[str, dict[str, Any]], *, root: str,
                  executed: Iterable[str] | None = None) -> list[ServingHints]:
    """One `ServingHints` per PushedModel output that pushed a version in ``outputs`` (a run's outputs).

    ``executed`` (node ids) tells which Pushers ran in this run; a cached Pusher pushed
    nothing now, so its hints say so, and are left out if its version is gone since.
    """
    ran = None if executed is None else set(executed)
    pushers = {id(a): ran is None or node in ran for node, produced in outputs.items()
               for a in produced.values() if a.TYPE_NAME == "PushedModel"}
    artifacts = [a for produced in outputs.values() for a in produced.values()]
    by_type: dict[str, list[Any]] = {}
    for artifact in artifacts:
        by_type.setdefault(artifact.TYPE_NAME, []).append(artifact)
    # ExampleGen's "examples" output, not Transform's "transformed_examples".
    raw_examples = [a for node in outputs.values() for key, a in node.items()
                    if key == "examples" and a.TYPE_NAME == "Examples" and "eval" in a.split_names]
    hints = []
    for pushed in by_type.get("PushedModel", []):
        if not pushed.properties.get("pushed"):
            continue
        destination = pushed.properties["pushed_destination"]
        if not pushers[id(pushed)] and not fileio.isdir(destination):
            continue  # pushed by an earlier run and removed since
        base = os.path.dirname(destination)
        name = os.path.basename(base)
        models = [m for m in by_type.get("Model", []) if m.id == pushed.properties.get("model_id")]
        label = models[0].properties.get("label_key") if models else None
        keep = models[0].properties.get("serving_raw_features") if models else None
        requests_file = first = None
        if raw_examples:
            requests_file = os.path.join(os.path.abspath(root), "sample_requests", f"{name}.tfrecord")
            first = _write_requests(raw_examples[0], label, requests_file, keep)
            if first is None:
                requests_file = None
        hints.append(ServingHints(name, base, int(pushed.properties["version"]), _serving_method(destination),
                                  requests_file, first, pushed_now=pushers[id(pushed)]))
    return hints
