"""``python -m serving.client``: predict, classify, regress, metadata, status.

Example:
    python -m serving.client predict --server localhost:8500 --model taxi \\
        --examples rows.jsonl --output json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from serving.client import ModelTarget
from serving.client import ServingClientError
from serving.client import connect
from serving.client import readers

COMMANDS = ("predict", "classify", "regress", "metadata", "status")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    p = argparse.ArgumentParser(prog="python -m serving.client",
                                description="Call a TF-Serving-compatible server.")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--server", required=True, help="host:port (gRPC or REST port).")
    p.add_argument("--model", required=True)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int)
    which.add_argument("--label")
    p.add_argument("--signature", default="", help="Signature name (default: serving_default).")
    p.add_argument("--examples", help="Rows: .csv, .jsonl or .tfrecord (tf.Example).")
    p.add_argument("--schema", help="A tensorflow_metadata schema.pbtxt that types the rows' features "
                                    "(INT/FLOAT/BYTES) as the model parses them.")
    p.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
    p.add_argument("--output", choices=("table", "json"), default="table")
    p.add_argument("--timeout", type=float, default=30.0)
    return p


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def run(args: argparse.Namespace) -> list[dict] | dict:
    """Executes one command; returns rows (or a dict for metadata)."""
    target = ModelTarget(args.server, args.model, version=args.version, label=args.label)
    with connect(target, protocol=args.protocol, timeout=args.timeout) as client:
        if args.command == "metadata":
            return client.metadata()
        if args.command == "status":
            return client.status()
        if not args.examples:
            raise ValueError(f"{args.command} needs --examples rows.csv|.jsonl|.tfrecord.")
        rows = readers.read_rows(args.examples, schema=args.schema)
        if args.command == "predict":
            outputs = client.predict(readers.columns(rows), signature_name=args.signature)
            return [{k: _jsonable(v[i]) for k, v in sorted(outputs.items())}
                    for i in range(len(rows))]
        if args.command == "classify":
            results = client.classify(rows, signature_name=args.signature)
            return [{label: score for label, score in r} for r in results]
        results = client.regress(rows, signature_name=args.signature)
        return [{"value": v} for v in results]


def render(result, output: str) -> None:
    """Prints JSON lines, or a rich table for row results."""
    if output == "json" or isinstance(result, dict):
        if isinstance(result, dict):
            print(json.dumps(_jsonable(result)))
        else:
            for row in result:
                print(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    keys = list(dict.fromkeys(k for row in result for k in row))
    for key in ["#"] + keys:
        table.add_column(str(key))
    for i, row in enumerate(result):
        table.add_row(str(i), *(json.dumps(row.get(k)) for k in keys))
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        render(run(args), args.output)
    except (ServingClientError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
