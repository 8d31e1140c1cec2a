"""Robustness, measured by the project's own corpora; prints one JSON line.

Three parts (issue 14):

* **Bad input.** Every case of ``tests/corpus/cases.py`` through the real components:
  how many got their documented outcome, how many were a clear one-line error, how many
  quarantines balanced (rows in = rows out + quarantined), and hangs (must be 0).
* **Crashes.** kill -9 at points across a full taxi pipeline run, each followed by a rerun
  (``tests/pipeline/kill_matrix.py``): points survived over points tried. ``--skip_crashes``
  leaves it out (it takes about as long as one pipeline run plus a restart per point).
* **Server storm.** 1,000 malformed requests (``tests/serving/storm.py``) against a real
  ``python -m serving`` process: the statuses returned, and the server's RSS and peak RSS
  before and after.

Usage: ``.venv/bin/python benchmarks/robustness.py [--skip_crashes] [--storm_requests N]``
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "serving"))
MAX_ROWS = 100


def corpus() -> dict:
    from tests.corpus.cases import CASES
    from tests.corpus.runner import run_case

    counts = collections.Counter()
    off = []
    for case in CASES:
        workdir = tempfile.mkdtemp(prefix=f"corpus-{case.name}-")
        try:
            outcome = run_case(case, workdir)
        finally:
            subprocess.run(["chmod", "-R", "u+rwx", workdir], check=False)
            shutil.rmtree(workdir, ignore_errors=True)
        counts["tried"] += 1
        counts["hangs"] += outcome.kind == "hang"
        documented = outcome.kind == ("error" if case.outcome == "label" else case.outcome)
        if outcome.kind == "error":
            one_line = "\n" not in outcome.message.strip()
            names_all = all(m.lower() in outcome.message.lower() for m in case.mention)
            counts["clear_errors"] += one_line and names_all
            documented = documented and one_line and names_all
        elif outcome.kind in ("ok", "quarantine"):
            p = outcome.properties
            balanced = p["rows_in"] == sum(p["row_counts"].values()) + p["quarantined"]
            if outcome.kind == "quarantine":
                counts["quarantines"] += 1
                counts["quarantines_balanced"] += balanced
            documented = documented and balanced
        elif outcome.kind == "anomaly":
            documented = (case.anomaly in outcome.anomalies if case.anomaly
                          else outcome.anomalies == [])
        counts["as_documented"] += documented
        if not documented:
            off.append(case.name)
        counts["max_case_seconds"] = max(counts["max_case_seconds"], round(outcome.seconds))
    return {**{f"corpus_{k}": v for k, v in counts.items()}, "corpus_not_as_documented": off}


def crashes() -> dict:
    from tests.pipeline.kill_matrix import DEFAULT_POINTS, final_checks, run_kill_chain, summary

    root = tempfile.mkdtemp(prefix="kill-chain-")
    try:
        steps = run_kill_chain(root, DEFAULT_POINTS)
        result = summary(steps, final_checks(root, steps))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"crash_points_tried": result["killed_running"], "crash_points_survived": result["survived"],
            "crash_points_not_reached": result["not_reached"], "crash_chain_final_ok": result["final_ok"]}


def storm(n: int) -> dict:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    import saved_models
    from storm import MODEL, rss_kib, send, storm_requests
    from tf_serving_harness import ServerRegistry

    root = tempfile.mkdtemp(prefix="storm-")
    registry = ServerRegistry(root)
    try:
        export = saved_models.export_tiny_model(os.path.join(root, "export"))
        base = os.path.join(root, "models", MODEL)
        saved_models.push_version(base, 1, export)
        server = registry.run(MODEL, base, extra_flags=(f"--max_rows_per_request={MAX_ROWS}",))
        kinds = storm_requests(MAX_ROWS)
        statuses = collections.Counter()
        unexpected = 0
        with grpc.insecure_channel(server.grpc_address,
                                   options=[("grpc.max_send_message_length", -1)]) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def burst(count):
                nonlocal unexpected
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    for ok, status in pool.map(
                            lambda i: send(server.rest_address, stub, kinds[i % len(kinds)]), range(count)):
                        statuses[status] += 1
                        unexpected += not ok

            burst(len(kinds) * 2)  # warm-up, as in tests/serving/test_abuse.py
            statuses.clear()
            unexpected = 0
            pid = server.proc.pid
            before, peak_before = rss_kib(pid), rss_kib(pid, "VmHWM")
            started = time.perf_counter()
            burst(n)
            seconds = time.perf_counter() - started
            after, peak_after = rss_kib(pid), rss_kib(pid, "VmHWM")
            alive = server.proc.poll() is None
    finally:
        registry.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    return {"storm_requests": n, "storm_statuses": dict(statuses), "storm_unexpected_statuses": unexpected,
            "storm_requests_per_sec": round(n / seconds, 1), "storm_server_alive": alive,
            "storm_rss_mib_before": round(before / 1024, 1), "storm_rss_mib_after": round(after / 1024, 1),
            "storm_peak_rss_mib_before": round(peak_before / 1024, 1),
            "storm_peak_rss_mib_after": round(peak_after / 1024, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip_crashes", action="store_true", help="leave out the kill -9 chain")
    parser.add_argument("--skip_corpus", action="store_true", help="leave out the bad-input corpus")
    parser.add_argument("--storm_requests", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = {"benchmark": "robustness"}
    with contextlib.redirect_stdout(sys.stderr):  # One JSON line on stdout, progress on stderr.
        if not args.skip_corpus:
            result.update(corpus())
        if not args.skip_crashes:
            result.update(crashes())
        if args.storm_requests:
            result.update(storm(args.storm_requests))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
