"""What an object-store pipeline root costs: the taxi pipeline on a local root against the same
pipeline on a URL root (`pipeline/staging.py`: inputs downloaded, outputs and logs uploaded).

The URL is TensorFlow's in-memory ``ram://`` filesystem, reached through ``tf.io.gfile`` exactly as
``gs://`` would be, so the figure is the staging layer's own cost (copies, listings, the per-file
gfile calls) without a network; on a real bucket add the transfer time of the bytes listed. Both
runs happen in this process (``ram://`` lives in one process), alternated ``--repeats`` times, each
in a fresh root and a fresh SQLite store (no cache), with ``--train-steps`` training steps and
no BulkInferrer. The imports are warmed up by one untimed local run first.

Prints one JSON line: {"local_s": [...], "url_s": [...], "url_vs_local": best url / best local,
"bytes_uploaded": size of every artifact under the URL root, "files_uploaded", "train_steps",
"load_avg"}.

Usage: .venv/bin/python benchmarks/object_store_root.py [--repeats 2] [--train-steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def run_once(root: str, metadata: str, steps: int) -> float:
    from pipeline.examples.taxi_full_pipeline import create_pipeline
    from pipeline.runner import LocalRunner

    pipeline = create_pipeline(root=root, metadata=metadata, train_steps=steps, random_seed=7,
                               beam_pipeline_args=["--direct_num_workers=1"])
    started = time.perf_counter()
    result = LocalRunner().run(pipeline)
    seconds = time.perf_counter() - started
    if not result.outputs["Pusher"]["pushed_model"].properties.get("pushed"):
        raise SystemExit(f"object_store_root: the run on {root} pushed nothing")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from components import fileio

    local_s, url_s, sizes = [], [], (0, 0)
    with tempfile.TemporaryDirectory(prefix="bench-object-store-") as tmp:
        os.environ["PIPELINE_STAGING_DIR"] = os.path.join(tmp, "staging")
        run_once(os.path.join(tmp, "warmup"), f"sqlite:///{tmp}/warmup.sqlite", args.train_steps)
        for i in range(args.repeats):
            local_s.append(run_once(os.path.join(tmp, f"local-{i}"), f"sqlite:///{tmp}/local-{i}.sqlite",
                                    args.train_steps))
            url = f"ram://bench-{uuid.uuid4().hex[:8]}/taxi"
            url_s.append(run_once(url, f"sqlite:///{tmp}/url-{i}.sqlite", args.train_steps))
            files = [f"{d}/{name}" for d, _, names in fileio.walk(url) for name in names]
            sizes = (len(files), sum(tf.io.gfile.stat(f).length for f in files))
            for f in files:  # free the memory before the next repeat
                tf.io.gfile.remove(f)
    print(json.dumps({
        "local_s": [round(s, 2) for s in local_s], "url_s": [round(s, 2) for s in url_s],
        "url_vs_local": round(min(url_s) / min(local_s), 3),
        "files_uploaded": sizes[0], "bytes_uploaded": sizes[1], "train_steps": args.train_steps,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
