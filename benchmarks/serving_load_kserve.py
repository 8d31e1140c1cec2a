"""The peer server for ``benchmarks/serving_load.py``: KServe's Python model server.

Runs ONLY in the peer's own virtualenv (``kserve`` and ``tensorflow-cpu``),
never in the project's ``.venv``; ``serving_load.py`` creates that venv and
starts this file with its interpreter. Nothing here imports the project.

It serves the benchmark's SavedModels with KServe's documented custom-model
pattern: a ``kserve.Model`` subclass whose ``load()`` loads the SavedModel and
whose ``predict()`` runs one of its signatures, behind ``kserve.ModelServer``
(REST v1 ``/v1/models/NAME:predict`` and gRPC v2 ``ModelInfer``).

* ``dense`` models (the MLPs): REST ``{"instances": [[floats]]}``, gRPC one
  FP32 tensor; ``predict()`` runs the signature on a float32 matrix.
* ``examples`` models (the wide & deep estimator export): REST instances are
  feature dicts (``{"fare": 0.4, "company": 3}``) that ``predict()`` turns into
  serialized ``tf.Example``s, gRPC one BYTES tensor of serialized examples; the
  classification signature then runs, as TF Serving's Classify does.

Per-request logging (uvicorn's access log, KServe's latency and gRPC method
lines) is turned off, so the peer is measured at its best.

Subcommands::

    serve   --http_port P --grpc_port G --model NAME=DIR:SIGNATURE:KIND ...
    prepare --grpc_target HOST:PORT --plan plan.json
        (writes gRPC v2 request files and prints each response's outputs as JSON)
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import sys

import numpy as np

FP32, BYTES = "FP32", "BYTES"


def _quiet() -> None:
    for name in ("kserve", "kserve.trace", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _example_bytes(row: dict) -> bytes:
    import tensorflow as tf

    feature = {}
    for key, value in row.items():
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, int) for v in values):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        elif all(isinstance(v, (int, float)) for v in values):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
        else:
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode() if isinstance(v, str) else v for v in values]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def serve(args) -> None:
    import kserve
    import tensorflow as tf
    from kserve import InferOutput, InferRequest, InferResponse

    class SavedModelPredictor(kserve.Model):
        """A SavedModel signature behind KServe's v1 (dict) and v2 (InferRequest) protocols."""

        def __init__(self, name: str, path: str, signature: str, kind: str):
            super().__init__(name)
            self.path, self.signature, self.kind = path, signature, kind
            self.load()

        def load(self) -> bool:
            self.fn = tf.saved_model.load(self.path).signatures[self.signature]
            self.input_name = next(iter(self.fn.structured_input_signature[1]))
            self.ready = True
            return self.ready

        def _run(self, array) -> dict:
            return {k: v.numpy() for k, v in self.fn(**{self.input_name: tf.constant(array)}).items()}

        def predict(self, payload, headers=None):
            if isinstance(payload, InferRequest):  # gRPC v2 (or REST v2)
                array = payload.inputs[0].as_numpy()
                if self.kind == "examples":
                    array = list(array.reshape(-1))
                outputs = self._run(array)
                infer_outputs = []
                for key, value in sorted(outputs.items()):
                    out = InferOutput(name=key, shape=list(value.shape),
                                      datatype=BYTES if value.dtype == object else FP32)
                    if value.dtype != object:
                        value = value.astype(np.float32)
                    out.set_data_from_numpy(value, binary_data=True)
                    infer_outputs.append(out)
                return InferResponse(model_name=self.name, infer_outputs=infer_outputs,
                                     response_id=payload.id)
            instances = payload["instances"]  # REST v1
            if self.kind == "examples":
                outputs = self._run([_example_bytes(row) for row in instances])
                scores = outputs["scores"].tolist()
                classes = [[c.decode() for c in row] for row in outputs["classes"]]
                return {"predictions": [{"classes": c, "scores": s}
                                        for c, s in zip(classes, scores)]}
            outputs = self._run(np.asarray(instances, dtype=np.float32))
            if len(outputs) == 1:
                return {"predictions": next(iter(outputs.values())).tolist()}
            return {"predictions": {k: v.tolist() for k, v in outputs.items()}}

    models = []
    for spec in args.model:
        name, rest = spec.split("=", 1)
        path, signature, kind = rest.rsplit(":", 2)
        models.append(SavedModelPredictor(name, path, signature, kind))
    server = kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port,
                                workers=1, enable_latency_logging=False)
    _quiet()
    print(f"KServe ready to start on http {args.http_port} grpc {args.grpc_port}", flush=True)
    server.start(models)


def prepare(args) -> None:
    import grpc
    from kserve import InferInput, InferRequest, InferResponse
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc

    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    results = {}
    with grpc.insecure_channel(args.grpc_target) as channel:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        for item in plan:
            if item["datatype"] == FP32:
                array = np.asarray(item["data"], dtype=np.float32)
            else:
                array = np.array([base64.b64decode(v) for v in item["data"]], dtype=object)
            infer_input = InferInput(name=item["input_name"], shape=list(array.shape),
                                     datatype=item["datatype"])
            infer_input.set_data_from_numpy(array, binary_data=True)
            request = InferRequest(model_name=item["model"], infer_inputs=[infer_input],
                                   request_id="1").to_grpc()
            with open(item["request_file"], "wb") as f:
                f.write(request.SerializeToString())
            try:
                response = InferResponse.from_grpc(stub.ModelInfer(request, timeout=60))
                results[item["id"]] = {
                    o.name: (o.as_numpy().astype(np.float64).tolist()
                             if o.datatype != BYTES else None)
                    for o in response.outputs}
            except grpc.RpcError as e:
                results[item["id"]] = {"error": f"{e.code()}: {e.details()}"}
    print(json.dumps(results), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--http_port", type=int, required=True)
    p.add_argument("--grpc_port", type=int, required=True)
    p.add_argument("--model", action="append", required=True,
                   help="NAME=SAVED_MODEL_DIR:SIGNATURE:KIND (KIND: dense or examples)")
    p = sub.add_parser("prepare")
    p.add_argument("--grpc_target", required=True)
    p.add_argument("--plan", required=True)
    args = parser.parse_args()
    # kserve.model_server parses sys.argv when imported; give it only what it knows.
    if args.command == "serve":
        sys.argv = [sys.argv[0], f"--http_port={args.http_port}", f"--grpc_port={args.grpc_port}",
                    "--enable_latency_logging=false"]
    else:
        sys.argv = [sys.argv[0]]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    serve(args) if args.command == "serve" else prepare(args)


if __name__ == "__main__":
    main()
