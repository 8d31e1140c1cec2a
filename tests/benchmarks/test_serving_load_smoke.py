"""Smoke test of benchmarks/serving_load.py: it runs end to end and prints the JSON it promises.

Timings are not asserted (they depend on the machine and on what else runs on it); the test
checks the shape of the JSON line, that every response check passed, and that no process the
benchmark started outlives it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "serving_load.py"
TARGETS = {
    "rest_1row_p50_overhead_ms", "grpc_1row_p50_overhead_ms",
    "wide_deep_classify_grpc_batching_1row_vs_in_process_64",
    "wide_deep_classify_grpc_batching_1row_vs_peer",
    "wide_deep_classify_grpc_batching_16row_vs_in_process_16",
}


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(f"{pid}: {cmdline.decode(errors='replace')}")
    return found


@pytest.mark.slow
def test_quick_run_on_the_tiny_model_prints_the_promised_json(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-peer", "--models", "tiny",
         f"--cache_dir={tmp_path / 'cache'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, run.stdout[-2000:]
    result = json.loads(lines[0])

    assert result["benchmark"] == "serving_load" and result["mode"] == "quick"
    assert result["peer"] is None and result["peer_skipped"] == "--no-peer"
    assert result["inflight"] == 16 and result["rows_per_request"] == [1, 16]
    reference = result["models"]["tiny"]["apis"]["predict"]["in_process"]
    assert set(reference) == {"rows_1", "rows_16", "batch_16_rows_per_s", "batch_64_rows_per_s"}

    expected = {f"tiny.predict.{protocol}.{rows}row.batching_{mode}"
                for protocol in ("rest", "grpc") for rows in (1, 16) for mode in ("off", "on")}
    assert set(result["scenarios"]) == expected
    for sid, record in result["scenarios"].items():
        assert record["check"] == "ok", (sid, record)
        assert "error" not in record, (sid, record)
        for key in ("p50_ms", "p99_ms", "p50_overhead_ms", "p99_overhead_ms", "requests_per_s",
                    "rows_per_s", "in_process_rows_per_s", "ratio", "failures",
                    "server_cpu_cores", "client_cpu_cores"):
            assert isinstance(record[key], (int, float)), (sid, key, record)
        assert record["failures"] == 0, (sid, record)
        assert record["in_process_batch"] == (64 if record["rows"] == 1 else 16)

    assert set(result["targets"]) == TARGETS
    for name, target in result["targets"].items():
        assert {"value", "target", "met"} <= set(target), name
    for name in ("rest_1row_p50_overhead_ms", "grpc_1row_p50_overhead_ms"):
        assert isinstance(result["targets"][name]["met"], bool)
    # Without wide & deep and without a peer these have no value, and say so.
    assert result["targets"]["wide_deep_classify_grpc_batching_1row_vs_peer"]["met"] is None

    assert processes_mentioning(str(tmp_path)) == []


def test_a_peer_venv_that_cannot_be_made_is_skipped_with_a_reason(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("serving_load", SCRIPT)
    serving_load = importlib.util.module_from_spec(spec)
    sys.modules["serving_load"] = serving_load  # dataclasses look their module up there
    try:
        spec.loader.exec_module(serving_load)
    finally:
        del sys.modules["serving_load"]
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    python, info = serving_load.peer_python(str(blocker / "venv"), "2.21.0")
    assert python is None
    assert "cannot make the KServe venv" in info["reason"]
    assert "peer skipped" in capsys.readouterr().err
