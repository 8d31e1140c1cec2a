"""The trainer core's redesign (one program per mode, strategy-aware) measured in one run.

Prints one JSON line (progress goes to stderr). ``single_process``: the taxi wide
& deep of `taxi_wide_deep.py` (same columns and network, batch 256) with default
RunConfig settings (no steps_per_loop, the standard hooks) trained ``--steps``
steps by the current checkout ("after") and by a ``git worktree`` of the commit
before the redesign (``--before``, default ee0a864; "before"), each in its own
child process with the same Python, the two alternated ``--repeats`` times; the
figure is steady-state examples/s (the steps after the first 100, timed by a
hook that fetches nothing), the best run of each side, and the ratio
after/before (> 1: the redesign is faster); the tiny iris DNN (4 features,
hidden 10-20-10, 3 classes, batch 32) is given as steady-state ms per step and
the ratio after/before (< 1: faster). With ``--tf215 PYTHON`` (a venv with
tensorflow-cpu and tensorflow-estimator 2.15, see `distributed_tf215.py`), the
original tf.estimator trains the same two models with its defaults in that
interpreter, alternated with the others: ``vs_tf_estimator_2_15`` gives its
figures and the ratios (taxi examples/s after/tf.estimator, > 1: ours faster;
iris ms per step after/tf.estimator, < 1: ours faster; and the whole first
``train`` call, build included), from the best run of each side and, less
sensitive to load that changes during the run, the median over the repeats of
each back-to-back pair's ratio. ``mirrored``: the same taxi model under
one MirroredStrategy over two logical CPU devices (set before TensorFlow
starts, in a child process), the Estimator (``RunConfig(train_distribute=...)``,
global batch 256) against the benchmark's Keras peer built and fitted inside
the same strategy's scope: steady examples/s of each and the ratio
Estimator/Keras. ``multi_worker``: two worker processes from `trainer.cluster` on this machine
(their CPUs shared between them), the Estimator
(``train_distribute=MultiWorkerMirroredStrategy()``, global batch 256, one step
per call as on every cluster) against Keras ``fit`` under the same strategy
(tf_keras: Keras 3's ``fit`` fails under MultiWorkerMirroredStrategy here):
steady examples/s of each, reported by worker 0, and the ratio. ``eval_after_eval``: after training, 5
``evaluate`` calls on the same Estimator (its eval program is built by the
first and reused: later calls only restore the checkpoint) against 5 calls each
on a new Estimator over the same model_dir (a fresh build every time, as the
code before the redesign did on every call; its own same-Estimator calls are
given too): the mean seconds of calls 2-5 and the ratio new/same. Timings are
wall clock on shared CPUs (other jobs may run at the same time: the load
average is recorded) and are noisy; quote the ratios.

With ``--single_only`` only the single-process figures of the current checkout
(and of tf.estimator 2.15 with ``--tf215``) are measured: no "before" worktree,
no evaluations, no mirrored or multi-worker runs; the JSON line then holds
``single_process`` (ours only) and ``vs_tf_estimator_2_15``.

    python benchmarks/distributed.py [--steps 1500] [--iris_steps 2000] [--repeats 3] [--quick]
                                     [--tf215 /tmp/tf215/bin/python] [--single_only]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
CHILD = HERE / "distributed_child.py"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def child(args, cwd, timeout):
    """Runs distributed_child.py with ``args`` in ``cwd``; its last stdout line as JSON."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               PYTHONDONTWRITEBYTECODE="1")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(CHILD), *args], cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if proc.returncode:
        raise SystemExit(f"child {args} failed with exit status {proc.returncode}")
    log(f"child {args[0]} {args[args.index('--label') + 1] if '--label' in args else ''} "
        f"took {time.perf_counter() - started:.0f}s")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tf215_child(python, args, timeout):
    """Runs distributed_tf215.py under ``python`` (the tf.estimator 2.15 venv); its JSON line."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    proc = subprocess.run([python, str(HERE / "distributed_tf215.py"), *args], cwd=HERE, env=env,
                          timeout=timeout, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    if proc.returncode:
        raise SystemExit(f"the tf.estimator 2.15 child ({python}) failed with exit status {proc.returncode}")
    log(f"child tf215 took {time.perf_counter() - started:.0f}s")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def multi_worker_child(steps, timeout):
    """Two workers of distributed_child.py multi_worker under trainer.cluster; worker 0's JSON."""
    sys.path.insert(0, str(REPO))
    from trainer.cluster import LocalCluster
    # The Keras peer is tf_keras (TF_USE_LEGACY_KERAS=1): Keras 3's fit raised "ValueError:
    # Attempt to convert a value ({'trip_miles': PerReplica:{...}}) with an unsupported type"
    # under MultiWorkerMirroredStrategy here (TF 2.21). The Estimator does not use tf.keras.
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1", "CUDA_VISIBLE_DEVICES": "",
           "TF_USE_LEGACY_KERAS": "1"}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as model_dir:
        cluster = LocalCluster([sys.executable, str(CHILD), "multi_worker", "--steps", str(steps),
                                "--model_dir", model_dir], workers=2, timeout=timeout, env=env, cwd=str(REPO))
        with cluster:
            cluster.start()
            result = cluster.wait()
    if result.exit_code != 0:
        tail = "\n".join(f"[{task}] {line}" for task, line in result.lines[-40:])
        raise SystemExit(f"the multi_worker cluster failed (exit {result.exit_code}):\n{tail}")
    log(f"child multi_worker took {time.perf_counter() - started:.0f}s")
    lines = [line for line in result.output("worker:0").splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, stdout=subprocess.PIPE,
                          stderr=sys.stderr, text=True).stdout.strip()


def mean_after_first(times):
    return statistics.mean(times[1:]) if len(times) > 1 else times[0]


def vs_tf215(runs):
    """Best of each side: ours (after) against tf.estimator 2.15, single process, default settings."""
    def best(side, model, key, pick):
        return pick(r[model][key] for r in runs[side])

    taxi = best("after", "taxi", "examples_per_sec", max), best("tf215", "taxi", "examples_per_sec", max)
    iris = best("after", "iris", "ms_per_step", min), best("tf215", "iris", "ms_per_step", min)
    call = (best("after", "iris", "train_call_s", min), best("tf215", "iris", "train_call_s", min))
    taxi_call = (best("after", "taxi", "train_call_s", min), best("tf215", "taxi", "train_call_s", min))
    # Each repeat's ours/tf.estimator pair ran back to back, under about the same load.
    taxi_pairs = [a["taxi"]["examples_per_sec"] / b["taxi"]["examples_per_sec"]
                  for a, b in zip(runs["after"], runs["tf215"])]
    iris_pairs = [a["iris"]["ms_per_step"] / b["iris"]["ms_per_step"] for a, b in zip(runs["after"], runs["tf215"])]
    return {
        "tensorflow": runs["tf215"][0]["tensorflow"],
        "taxi_examples_per_sec_tf215": round(taxi[1]),
        "taxi_ratio_after_vs_tf215": round(taxi[0] / taxi[1], 3),
        "taxi_examples_per_sec_tf215_runs": [round(r["taxi"]["examples_per_sec"]) for r in runs["tf215"]],
        "taxi_ratio_per_pair": [round(r, 3) for r in taxi_pairs],
        "taxi_ratio_median_of_pairs": round(statistics.median(taxi_pairs), 3),
        "taxi_train_call_s_after_vs_tf215": [round(taxi_call[0], 2), round(taxi_call[1], 2)],
        "iris_ms_per_step_tf215": round(iris[1], 3),
        "iris_ratio_after_vs_tf215": round(iris[0] / iris[1], 3),
        "iris_ms_per_step_tf215_runs": [round(r["iris"]["ms_per_step"], 3) for r in runs["tf215"]],
        "iris_ratio_per_pair": [round(r, 3) for r in iris_pairs],
        "iris_ratio_median_of_pairs": round(statistics.median(iris_pairs), 3),
        "iris_train_call_s_after_vs_tf215": [round(call[0], 2), round(call[1], 2)],
    }


def single_only(args, common, runs, head, dirty, started, load_start):
    """``--single_only``: this checkout and tf.estimator 2.15 alternated, nothing else."""
    loads = []
    for i in range(args.repeats):
        loads.append(round(os.getloadavg()[0], 2))
        runs["after"].append(child(["single", "--tree", str(REPO), "--label", f"after#{i + 1}", *common],
                                   cwd=REPO, timeout=args.timeout))
        if args.tf215:
            loads.append(round(os.getloadavg()[0], 2))
            runs["tf215"].append(tf215_child(args.tf215, common, args.timeout))

    def best(model, key, pick):
        return pick(r[model][key] for r in runs["after"])

    result = {
        "benchmark": "distributed", "mode": "single_only",
        "after": head + ("+uncommitted trainer/ changes" if dirty else ""),
        "steps": args.steps, "iris_steps": args.iris_steps, "batch_size": 256, "repeats": args.repeats,
        "single_process": {
            "taxi_examples_per_sec_after": round(best("taxi", "examples_per_sec", max)),
            "taxi_examples_per_sec_after_runs": [round(r["taxi"]["examples_per_sec"]) for r in runs["after"]],
            "iris_ms_per_step_after": round(best("iris", "ms_per_step", min), 3),
            "iris_ms_per_step_after_runs": [round(r["iris"]["ms_per_step"], 3) for r in runs["after"]],
        },
        "vs_tf_estimator_2_15": vs_tf215(runs) if runs["tf215"] else "not run (pass --tf215 PYTHON)",
        "load_average_before_each_child": loads,
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "wall_s": round(time.perf_counter() - started),
        "note": "wall-clock timings on shared CPUs are noisy: quote the ratios",
    }
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="taxi training steps (single and mirrored)")
    parser.add_argument("--iris_steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="before/after pairs, alternated (best kept)")
    parser.add_argument("--evals", type=int, default=5)
    parser.add_argument("--before", default="ee0a864", help="the commit before the redesign")
    parser.add_argument("--quick", action="store_true", help="300 steps, one pair (a smoke run)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child process")
    parser.add_argument("--tf215", help="python of a venv with tf.estimator 2.15 (see distributed_tf215.py)")
    parser.add_argument("--single_only", action="store_true",
                        help="only the single-process runs of this checkout (and --tf215), alternated")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.iris_steps, args.repeats, args.evals = 300, 300, 1, 3
    started = time.perf_counter()
    load_start = os.getloadavg()
    head = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "trainer"))
    before = git("rev-parse", "--short", args.before)

    common = ["--steps", str(args.steps), "--iris_steps", str(args.iris_steps)]
    runs = {"after": [], "before": [], "tf215": []}
    if args.single_only:
        return single_only(args, common, runs, head, dirty, started, load_start)
    tmp = tempfile.mkdtemp(prefix="distributed-bench-")
    tree = os.path.join(tmp, "before")
    git("worktree", "add", "--detach", tree, args.before)
    try:
        for i in range(args.repeats):
            evals = ["--evals", str(args.evals)] if i == 0 else []
            runs["after"].append(child(["single", "--tree", str(REPO), "--label", f"after#{i + 1}", *common,
                                        *evals, *(["--fresh_evals"] if evals else [])],
                                       cwd=REPO, timeout=args.timeout))
            runs["before"].append(child(["single", "--tree", tree, "--label", f"before#{i + 1}", *common,
                                         *evals], cwd=tree, timeout=args.timeout))
            if args.tf215:
                runs["tf215"].append(tf215_child(args.tf215, common, args.timeout))
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", tree], stderr=sys.stderr)
        subprocess.run(["rm", "-rf", tmp])
    mirrored = child(["mirrored", "--steps", str(args.steps)], cwd=REPO, timeout=args.timeout)
    multi = multi_worker_child(args.steps, args.timeout)

    def best(side, model, key, pick=max):
        return pick(r[model][key] for r in runs[side])

    taxi_after, taxi_before = best("after", "taxi", "examples_per_sec"), best("before", "taxi", "examples_per_sec")
    iris_after = best("after", "iris", "ms_per_step", min)
    iris_before = best("before", "iris", "ms_per_step", min)
    same = runs["after"][0]["eval_same_estimator_s"]
    new = runs["after"][0]["eval_new_estimator_s"]
    old_same = runs["before"][0]["eval_same_estimator_s"]
    est_m, keras_m = mirrored["estimator"], mirrored["keras"]
    result = {
        "benchmark": "distributed", "after": head + ("+uncommitted trainer/ changes" if dirty else ""),
        "before": before, "steps": args.steps, "iris_steps": args.iris_steps, "batch_size": 256,
        "repeats": args.repeats,
        "single_process": {
            "taxi_examples_per_sec_after": round(taxi_after),
            "taxi_examples_per_sec_before": round(taxi_before),
            "taxi_ratio_after_vs_before": round(taxi_after / taxi_before, 3),
            "taxi_examples_per_sec_after_runs": [round(r["taxi"]["examples_per_sec"]) for r in runs["after"]],
            "taxi_examples_per_sec_before_runs": [round(r["taxi"]["examples_per_sec"]) for r in runs["before"]],
            "taxi_end_to_end_examples_per_sec_after": round(best("after", "taxi", "examples_per_sec_end_to_end")),
            "taxi_end_to_end_examples_per_sec_before": round(best("before", "taxi", "examples_per_sec_end_to_end")),
            "iris_ms_per_step_after": round(iris_after, 3),
            "iris_ms_per_step_before": round(iris_before, 3),
            "iris_ratio_after_vs_before": round(iris_after / iris_before, 3),
            "iris_ms_per_step_after_runs": [round(r["iris"]["ms_per_step"], 3) for r in runs["after"]],
            "iris_ms_per_step_before_runs": [round(r["iris"]["ms_per_step"], 3) for r in runs["before"]],
        },
        "mirrored": {
            "devices": mirrored["devices"], "global_batch": mirrored["global_batch"],
            "estimator_examples_per_sec": round(est_m["examples_per_sec"]),
            "keras_fit_examples_per_sec": round(keras_m["examples_per_sec"]),
            "ratio_estimator_vs_keras": round(est_m["examples_per_sec"] / keras_m["examples_per_sec"], 3),
            "estimator_end_to_end_examples_per_sec": round(est_m["examples_per_sec_end_to_end"]),
            "keras_fit_end_to_end_examples_per_sec": round(keras_m["examples_per_sec_end_to_end"]),
            "ratio_estimator_vs_keras_end_to_end": round(
                est_m["examples_per_sec_end_to_end"] / keras_m["examples_per_sec_end_to_end"], 3),
        },
        "vs_tf_estimator_2_15": vs_tf215(runs) if runs["tf215"] else "not run (pass --tf215 PYTHON)",
        "multi_worker": {
            "workers": multi["workers"], "global_batch": multi["global_batch"],
            "keras_peer": "tf_keras (Keras 3 fit fails under MultiWorkerMirroredStrategy on TF 2.21)",
            "estimator_examples_per_sec": round(multi["estimator"]["examples_per_sec"]),
            "keras_fit_examples_per_sec": round(multi["keras"]["examples_per_sec"]),
            "ratio_estimator_vs_keras": round(multi["estimator"]["examples_per_sec"]
                                              / multi["keras"]["examples_per_sec"], 3),
            "ratio_estimator_vs_keras_end_to_end": round(
                multi["estimator"]["examples_per_sec_end_to_end"]
                / multi["keras"]["examples_per_sec_end_to_end"], 3),
        },
        "eval_after_eval": {
            "calls": len(same),
            "same_estimator_mean_s_calls_2_on": round(mean_after_first(same), 3),
            "new_estimator_mean_s_calls_2_on": round(mean_after_first(new), 3),
            "ratio_new_vs_same": round(mean_after_first(new) / mean_after_first(same), 1),
            "same_estimator_first_call_s": round(same[0], 3),
            "before_same_estimator_mean_s_calls_2_on": round(mean_after_first(old_same), 3),
            "same_estimator_s": [round(t, 3) for t in same],
            "new_estimator_s": [round(t, 3) for t in new],
            "before_same_estimator_s": [round(t, 3) for t in old_same],
        },
        "gpu": ({"devices": mirrored["gpus"], "measured": False} if mirrored["gpus"]
                else "not available"),
        "load_average_start_end": [round(load_start[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "wall_s": round(time.perf_counter() - started),
        "note": "wall-clock timings on shared CPUs are noisy: quote the ratios",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
