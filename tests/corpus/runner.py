"""Runs one corpus case through the real components and reports what happened.

Shared by ``tests/corpus/test_corpus.py`` (which asserts each case's documented outcome)
and ``benchmarks/robustness.py`` (which counts them). A case runs ExampleGen's real
executor on the DirectRunner; drift cases add StatisticsGen, SchemaGen (from the baseline
span) and ExampleValidator. Permission cases run in a child process as an unprivileged
user when this process is root, since root reads any file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASE_TIMEOUT_S = 180  # A case that takes longer counts as a hang (they take 1-15 s).
# Root reads and lists anything through these two capabilities; a child without them in
# its bounding set is held to the file modes like any user.
DROP_ROOT_READ = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@dataclasses.dataclass
class Outcome:
    """What a case did: ``kind`` is "error", "ok", "quarantine", "anomaly" or "hang" (a "label"
    case is an "error" when the check refuses the label)."""

    kind: str
    seconds: float
    message: str = ""
    error_type: str = ""
    properties: dict = dataclasses.field(default_factory=dict)
    anomalies: list = dataclasses.field(default_factory=list)


class _Hang(Exception):
    pass


def _write(case, base: str, files: dict[str, bytes]) -> None:
    os.makedirs(base, exist_ok=True)
    for name, content in files.items():
        path = os.path.join(base, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)


def _example_gen(case, base: str, work: str, tag: str):
    from components.example_gen import ExampleGen
    from tests.components.helpers import execute

    params = {"file_pattern": case.file_pattern, **case.params}
    input_base = params.pop("input_base", base)
    return execute(ExampleGen(input_base, **params), os.path.join(work, tag))["examples"]


def _anomalies(case, base: str, work: str) -> list[str]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from google.protobuf import text_format

    from components.example_validator import ExampleValidator
    from components.schema_gen import SchemaGen
    from components.statistics_gen import StatisticsGen
    from tests.components.helpers import execute

    baseline_base = os.path.join(os.path.dirname(base), "baseline")
    _write(case, baseline_base, case.baseline())
    gen_base = _example_gen(case, baseline_base, work, "baseline")
    gen_new = _example_gen(case, base, work, "new")
    from components.example_gen import ExampleGen

    stats_node = StatisticsGen(ExampleGen(base).outputs["examples"])
    stats_base = execute(stats_node, os.path.join(work, "s1"), {"examples": gen_base})["statistics"]
    stats_new = execute(stats_node, os.path.join(work, "s2"), {"examples": gen_new})["statistics"]
    schema = execute(SchemaGen(stats_node.outputs["statistics"]), os.path.join(work, "schema"),
                     {"statistics": stats_base})["schema"]
    # The taxi example's thresholds (pipeline/examples/taxi_pipeline.py).
    validator = ExampleValidator(stats_node.outputs["statistics"], SchemaGen(stats_node.outputs["statistics"])
                                 .outputs["schema"], baseline_statistics=stats_node.outputs["statistics"],
                                 on_anomaly="warn", l_infinity_threshold=0.3, jensen_shannon_threshold=0.3)
    out = execute(validator, os.path.join(work, "validate"),
                  {"statistics": stats_new, "schema": schema, "baseline_statistics": stats_base})["anomalies"]
    found = set()
    for split in out.properties.get("split_names", ["train", "eval"]):
        path = os.path.join(out.split_uri(split), "anomalies.pbtxt")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                found |= set(text_format.Parse(f.read(), anomalies_pb2.Anomalies()).anomaly_info)
    return sorted(found)


def _label_check(case, base: str, work: str) -> None:
    """The Trainer's pre-training label check, from the train split's statistics."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from components.example_gen import ExampleGen
    from components.statistics_gen import StatisticsGen
    from components.trainer.label_check import check_label, label_values_from_statistics
    from tests.components.helpers import execute

    examples = _example_gen(case, base, work, "gen")
    node = StatisticsGen(ExampleGen(base).outputs["examples"])
    stats = execute(node, os.path.join(work, "stats"), {"examples": examples})["statistics"]
    with open(os.path.join(stats.split_uri("train"), "FeatureStats.pb"), "rb") as f:
        dataset = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read()).datasets[0]
    label = next(iter(case.params["derived_columns"]))
    check_label(label=label, split="train", classifier=True, source="from the statistics",
                found=label_values_from_statistics(dataset, label), report=print)


def run_in_process(case, workdir: str) -> Outcome:
    """Runs ``case`` here, bounded by CASE_TIMEOUT_S (SIGALRM; main thread only)."""
    from components.base import ComponentError

    base = os.path.join(workdir, "input")
    _write(case, base, case.files())
    if case.prepare:
        case.prepare(base)
    start = time.monotonic()

    def on_alarm(signum, frame):
        raise _Hang(f"{case.name} ran past {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        if case.outcome == "anomaly":
            found = _anomalies(case, base, os.path.join(workdir, "work"))
            return Outcome("anomaly", time.monotonic() - start, anomalies=found)
        if case.outcome == "label":
            _label_check(case, base, os.path.join(workdir, "work"))
            return Outcome("ok", time.monotonic() - start)
        examples = _example_gen(case, base, os.path.join(workdir, "work"), "gen")
        props = dict(examples.properties)
        kind = "quarantine" if props.get("quarantined") else "ok"
        return Outcome(kind, time.monotonic() - start, properties=_jsonable(props))
    except _Hang as e:
        return Outcome("hang", time.monotonic() - start, message=str(e))
    except (ComponentError, ValueError, OSError) as e:
        return Outcome("error", time.monotonic() - start, message=str(e), error_type=type(e).__name__)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _jsonable(props: dict) -> dict:
    return json.loads(json.dumps(props, default=str))


def run_unprivileged(case, workdir: str) -> Outcome:
    """Runs ``case`` in a child process that root's file-access capabilities were dropped from."""
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [*DROP_ROOT_READ, sys.executable, "-m", "tests.corpus.runner", case.name, workdir],
            cwd=REPO, capture_output=True, text=True, timeout=CASE_TIMEOUT_S + 60,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        return Outcome("hang", time.monotonic() - start, message=f"{case.name}: child ran past the bound")
    finally:
        # Give the modes back so the test's temporary directory can be removed.
        subprocess.run(["chmod", "-R", "u+rwx", workdir], check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"corpus child for {case.name} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return Outcome(**json.loads(lines[-1]))


def run_case(case, workdir: str) -> Outcome:
    """Runs ``case`` (as an unprivileged child where the case needs it and we are root)."""
    if case.unprivileged and os.geteuid() == 0:
        return run_unprivileged(case, workdir)
    return run_in_process(case, workdir)


def main(argv: list[str]) -> int:
    from tests.corpus.cases import BY_NAME

    name, workdir = argv
    outcome = run_in_process(BY_NAME[name], os.path.join(workdir, "case"))
    print(json.dumps(dataclasses.asdict(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
