"""The taxi pipeline's wall time through the local runner, Airflow 3 and kfp.local, in one run.

Each orchestrator runs ``pipeline/examples/taxi_full_pipeline.py`` (bundled data, ``--train-steps``
steps, default 1000) from a fresh root, one after the other on the same machine:

* ``local``: ``python -m pipeline run`` (one process, nodes in order; the peer);
* ``airflow``: ``airflow dags test taxi_retraining <date>`` on the example DAG of
  ``airflow/dags/`` (its own AIRFLOW_HOME and SQLite database in a temp dir, made by
  ``airflow db migrate`` first, not timed); every node is a task running ``python -m pipeline
  run-node`` in its own process;
* ``kfp_local``: ``python -m pipeline.kubeflow run-local`` (kfp 2.16's SubprocessRunner, one
  lightweight task per node, each starting the same ``run-node`` command).

For each: the wall seconds, the seconds spent inside the components (the metadata store's
execution times) and the rest, the orchestration overhead; ``per_task_overhead_s`` is
(orchestrated wall - local wall) / tasks. Timings share the machine's CPUs with whatever else
runs (the load average is recorded): quote the ratios.

Prints one JSON line. Usage:
    .venv/bin/python benchmarks/orchestration.py [--train-steps 1000] [--skip airflow]
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
TIMEOUT_S = 1800


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(command, *, env=None, cwd=REPO):
    """Runs ``command``; returns its wall seconds (raises with its output tail if it fails)."""
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"orchestration benchmark: {' '.join(command[:4])} ... failed "
                         f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds


def summary(root: str, wall: float) -> dict:
    """The newest run in the root's store: node count, component seconds, pushed or not."""
    from pipeline.metadata import MetadataStore

    store = MetadataStore(f"sqlite:///{os.path.join(root, 'metadata.sqlite')}")
    newest = store.list_runs()[0]
    executions = store.executions_of_run(newest["id"])
    states = {e["component"]: e["state"] for e in executions}
    if set(states.values()) != {"COMPLETE"}:
        raise SystemExit(f"orchestration benchmark: not every node completed under {root}: {states}")
    inside = sum((e["finished"] - e["started"]).total_seconds() for e in executions)
    pushed = store.published("taxi", "Pusher", "pushed_model")[-1].properties.get("pushed")
    return {"wall_s": round(wall, 2), "tasks": len(executions), "components_s": round(inside, 2),
            "outside_components_s": round(wall - inside, 2), "pushed": bool(pushed)}


def local(tmp: str, steps: int) -> dict:
    root = os.path.join(tmp, "local")
    wall = run([sys.executable, "-m", "pipeline", "run", PIPELINE, "--root", root, "--no-report",
                "--set", f"train_steps={steps}"])
    return summary(root, wall)


def airflow(tmp: str, steps: int) -> dict:
    root = os.path.join(tmp, "airflow-root")
    home = os.path.join(tmp, "airflow-home")
    env = {"AIRFLOW_HOME": home, "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(REPO, "airflow", "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "TAXI_PIPELINE_ROOT": root,
           "TAXI_TRAIN_STEPS": str(steps), "PIPELINE_PYTHON": sys.executable}
    airflow_bin = os.path.join(os.path.dirname(sys.executable), "airflow")
    run([airflow_bin, "db", "migrate"], env=env)
    wall = run([airflow_bin, "dags", "test", "taxi_retraining", "2026-01-02"], env=env)
    return summary(root, wall)


def kfp_local(tmp: str, steps: int) -> dict:
    root = os.path.join(tmp, "kfp")
    wall = run([sys.executable, "-m", "pipeline.kubeflow", "run-local", PIPELINE, "--root", root,
                "--set", f"train_steps={steps}"])
    return summary(root, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--skip", action="append", default=[], choices=["airflow", "kfp_local"])
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    result: dict = {"benchmark": "orchestration", "train_steps": args.train_steps}
    with tempfile.TemporaryDirectory() as tmp:
        log("local runner ...")
        result["local"] = local(tmp, args.train_steps)
        for name, fn in (("airflow", airflow), ("kfp_local", kfp_local)):
            if name in args.skip:
                continue
            log(f"{name} ...")
            result[name] = fn(tmp, args.train_steps)
    base = result["local"]["wall_s"]
    for name in ("airflow", "kfp_local"):
        if name in result:
            entry = result[name]
            entry["vs_local"] = round(entry["wall_s"] / base, 3)
            entry["per_task_overhead_s"] = round((entry["wall_s"] - base) / entry["tasks"], 2)
    result.update(load_average_start_end=[round(load_start, 2), round(os.getloadavg()[0], 2)],
                  cpus=os.cpu_count(), note="wall-clock on shared CPUs: quote the ratios")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
