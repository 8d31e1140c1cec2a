"""End-to-end wall time of the full taxi pipeline, as a user runs it, against a 3-minute target.

Runs ``python -m pipeline run pipeline/examples/taxi_full_pipeline.py --root <temp root>`` on the
bundled data (data/taxi/data.csv, 15k rows, 1000 training steps) in a fresh temporary root (no
cache, no earlier model), then runs it again in the same root: the peer, where every component
comes from the cache (the resolvers answer as before, so nothing reruns). Wall times include
process start-up and the TensorFlow/Beam imports; installation is excluded. Per-component seconds
come from the metadata store's execution timings.

Prints one JSON line:
{"fresh": {"wall_s", "components_s": {node: s}, "outside_components_s"}, "cached": {"wall_s",
"not_cached": nodes that ran anyway, i.e. the two resolvers, which always ask the store}, "target_s": 180, "ratio_to_target": fresh wall / 180, "cached_vs_fresh": ratio, "cpus"}.

Usage: .venv/bin/python benchmarks/pipeline_e2e.py [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PIPELINE = os.path.join(REPO, "pipeline", "examples", "taxi_full_pipeline.py")
TARGET_S = 180.0


def run_cli(root: str) -> float:
    """Runs the pipeline through the CLI; returns the wall seconds."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", PIPELINE, "--root", root], cwd=REPO,
                          env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"pipeline_e2e: the pipeline failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def component_seconds(root: str, run_index: int) -> dict[str, dict]:
    """node -> {"state", "s"} of one run (0 = newest), from the metadata store."""
    from pipeline.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{os.path.join(root, 'metadata.sqlite')}")
    run = store.list_runs()[run_index]
    return {e["component"]: {"state": e["state"], "s": (e["finished"] - e["started"]).total_seconds()}
            for e in store.executions_of_run(run["id"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="pipeline root to use (must not exist; default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or os.path.join(tmp, "root")
        if os.path.exists(root):
            raise SystemExit(f"pipeline_e2e got --root={root!r}, which exists; expected a new directory. "
                             "How to fix: pass a path that does not exist yet (a fresh run).")
        fresh_wall = run_cli(root)
        cached_wall = run_cli(root)
        fresh = component_seconds(root, 1)
        cached = component_seconds(root, 0)
    components = {node: round(v["s"], 2) for node, v in fresh.items()}
    result = {
        "fresh": {"wall_s": round(fresh_wall, 2), "components_s": components,
                  "outside_components_s": round(fresh_wall - sum(components.values()), 2)},
        "cached": {"wall_s": round(cached_wall, 2),
                   "not_cached": sorted(n for n, v in cached.items() if v["state"] != "CACHED")},
        "target_s": TARGET_S,
        "ratio_to_target": round(fresh_wall / TARGET_S, 3),
        "cached_vs_fresh": round(cached_wall / fresh_wall, 3),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
