"""End-to-end wall time of the full taxi pipeline, as a user runs it, against a 3-minute target.

Runs ``python -m pipeline run pipeline/examples/taxi_full_pipeline.py --root <temp root>`` on the
bundled data (data/taxi/data.csv, 15k rows, 1000 training steps) in a fresh temporary root (no
cache, no earlier model), then runs it again in the same root: the peer, where every component
comes from the cache (the resolvers answer as before, so nothing reruns). Wall times include
process start-up and the TensorFlow/Beam imports; installation is excluded. Per-component seconds
come from the metadata store's execution timings.

The fresh run also scores the eval split with a BulkInferrer (``--set bulk_inference=true``), and
the run report is timed: ``report_s`` is ``pipeline.report.write_report`` for the fresh run in
this process (after one warm-up call on the cached run, so the imports are not counted; the CLI's
own report runs in a process that already imported them), target <= 5 s. Unless ``--no-tuner``,
``pipeline/examples/taxi_tuning.yaml`` runs too (``--trials`` trials of ``--trial-steps`` steps,
then the Trainer's ``--train-steps``), giving the Tuner's seconds next to its Trainer's: the
Tuner's cost is quoted as a ratio to the Trainer of the same run.

Prints one JSON line:
{"fresh": {"wall_s", "components_s": {node: s}, "outside_components_s"}, "cached": {"wall_s",
"not_cached": nodes that ran anyway, i.e. the two resolvers, which always ask the store},
"bulk_inferrer": {"s", "rows", "rows_per_s", "vs_evaluator"}, "report": {"s", "target_s"},
"tuner": {"trials", "trial_steps", "s", "trainer_s", "tuner_vs_trainer", "s_per_trial"},
"target_s": 180, "ratio_to_target": fresh wall / 180, "cached_vs_fresh": ratio, "cpus"}.

Usage: .venv/bin/python benchmarks/pipeline_e2e.py [--root DIR] [--no-tuner] [--trials 4]
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
TUNING = os.path.join(REPO, "pipeline", "examples", "taxi_tuning.yaml")
TARGET_S = 180.0
REPORT_TARGET_S = 5.0


def run_cli(root: str, *extra: str, pipeline: str = PIPELINE) -> float:
    """Runs the pipeline through the CLI (no report: it is timed on its own); returns the wall seconds."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", pipeline, "--root", root, "--no-report",
                           *extra], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"pipeline_e2e: the pipeline failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def _store(root: str):
    from pipeline.metadata import MetadataStore

    return MetadataStore(f"sqlite:///{os.path.join(root, 'metadata.sqlite')}")


def component_seconds(root: str, run_index: int) -> dict[str, dict]:
    """node -> {"state", "s"} of one run (0 = newest), from the metadata store."""
    store = _store(root)
    run = store.list_runs()[run_index]
    return {e["component"]: {"state": e["state"], "s": (e["finished"] - e["started"]).total_seconds()}
            for e in store.executions_of_run(run["id"])}


def report_seconds(root: str) -> float:
    """Seconds of write_report for the fresh run (index 1), after a warm-up on the newest run."""
    from pipeline.report import write_report

    runs = _store(root).list_runs()
    with tempfile.TemporaryDirectory() as out:
        write_report(root=root, run=runs[0]["id"], out=os.path.join(out, "warm.html"))
        started = time.monotonic()
        write_report(root=root, run=runs[1]["id"], out=os.path.join(out, "fresh.html"))
        return time.monotonic() - started


def inferred_rows(root: str) -> int:
    artifact = _store(root).published("taxi", "BulkInferrer", "inference_result")[-1]
    if not artifact.properties.get("inferred"):
        raise SystemExit(f"pipeline_e2e: the BulkInferrer scored nothing: {artifact.properties.get('reason')}")
    return sum(artifact.properties["row_counts"].values())


def tuner_cost(trials: int, trial_steps: int, train_steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "tuning")
        run_cli(root, "--set", f"tuning.trials={trials}", "--set", f"tuning.steps={trial_steps}",
                "--set", f"tuning.eval_every={max(1, trial_steps // 3)}", "--set", f"training.steps={train_steps}",
                pipeline=TUNING)
        seconds = component_seconds(root, 0)
    tuner, trainer = seconds["Tuner"]["s"], seconds["Trainer"]["s"]
    return {"trials": trials, "trial_steps": trial_steps, "train_steps": train_steps, "s": round(tuner, 2),
            "trainer_s": round(trainer, 2), "tuner_vs_trainer": round(tuner / trainer, 3),
            "s_per_trial": round(tuner / trials, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="pipeline root to use (must not exist; default: a temp dir)")
    parser.add_argument("--no-tuner", action="store_true", help="skip the tuning pipeline")
    parser.add_argument("--trials", type=int, default=4, help="Tuner trials (default 4)")
    parser.add_argument("--trial-steps", type=int, default=300, help="steps per trial (default 300)")
    parser.add_argument("--train-steps", type=int, default=1000, help="the tuned Trainer's steps (default 1000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or os.path.join(tmp, "root")
        if os.path.exists(root):
            raise SystemExit(f"pipeline_e2e got --root={root!r}, which exists; expected a new directory. "
                             "How to fix: pass a path that does not exist yet (a fresh run).")
        fresh_wall = run_cli(root, "--set", "bulk_inference=true")
        cached_wall = run_cli(root, "--set", "bulk_inference=true")
        fresh = component_seconds(root, 1)
        cached = component_seconds(root, 0)
        rows = inferred_rows(root)
        report_s = report_seconds(root)
    components = {node: round(v["s"], 2) for node, v in fresh.items()}
    bulk_s = fresh["BulkInferrer"]["s"]
    result = {
        "fresh": {"wall_s": round(fresh_wall, 2), "components_s": components,
                  "outside_components_s": round(fresh_wall - sum(components.values()), 2)},
        "cached": {"wall_s": round(cached_wall, 2),
                   "not_cached": sorted(n for n, v in cached.items() if v["state"] != "CACHED")},
        "bulk_inferrer": {"s": round(bulk_s, 2), "rows": rows, "rows_per_s": round(rows / bulk_s, 1),
                          "vs_evaluator": round(bulk_s / fresh["Evaluator"]["s"], 3)},
        "report": {"s": round(report_s, 2), "target_s": REPORT_TARGET_S},
        "tuner": None if args.no_tuner else tuner_cost(args.trials, args.trial_steps, args.train_steps),
        "target_s": TARGET_S,
        "ratio_to_target": round(fresh_wall / TARGET_S, 3),
        "cached_vs_fresh": round(cached_wall / fresh_wall, 3),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
