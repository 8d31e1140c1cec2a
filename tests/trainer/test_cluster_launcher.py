"""The local cluster launcher (trainer/cluster.py): TF_CONFIG per task, the end of the
cluster with its chief, crashes, restarts, timeouts, signals, and no process left
behind. The children are a tiny Python script without TensorFlow, except in one test
where two real TensorFlow workers all-reduce across MultiWorkerMirroredStrategy."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from trainer.cluster import LocalCluster, launch_local_cluster

REPO = pathlib.Path(__file__).resolve().parents[2]

# The task script: prints {"name", "pid", "tf_config"} and runs its plan, a
# comma-separated list of steps picked by task name (or "*") from argv[1].
# "touch:F" / "await:F1+F2" let a chief wait until the others reached a step.
TASK = textwrap.dedent('''
    import json, os, signal, subprocess, sys, time
    config = json.loads(os.environ["TF_CONFIG"])
    name = "%s:%d" % (config["task"]["type"], config["task"]["index"])
    plans = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    print(json.dumps({"name": name, "pid": os.getpid(), "tf_config": config}), flush=True)
    for step in plans.get(name, plans.get("*", "exit:0")).split(","):
        verb, _, arg = step.partition(":")
        if verb == "exit":
            sys.exit(int(arg))
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "hang":
            time.sleep(600)
        elif verb == "err":
            print(arg, file=sys.stderr, flush=True)
        elif verb == "ignore_term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif verb == "child":
            child = subprocess.Popen(["sleep", "600"])
            print(json.dumps({"child": child.pid}), flush=True)
        elif verb == "touch":
            open(arg, "w").close()
        elif verb == "await":
            deadline = time.time() + 60
            while not all(os.path.exists(p) for p in arg.split("+")) and time.time() < deadline:
                time.sleep(0.02)
        elif verb == "crash_once":
            if not os.path.exists(arg):
                open(arg, "w").close()
                sys.exit(7)
    ''')


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "task.py"
    path.write_text(TASK)
    return path


def command(script, plans):
    return [sys.executable, str(script), json.dumps(plans)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")   # a zombie is dead, only not reaped yet


def all_pids(result) -> list:
    pids = [pid for task in result.tasks.values() for pid in task.pids]
    for task in result.tasks.values():
        for line in task.lines:
            if line.startswith('{"child"'):
                pids.append(json.loads(line)["child"])
    return pids


def assert_none_left(pids, within=5.0):
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "processes left behind"


def kill_leftovers(pids):
    for pid in pids:
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def run(cmd, **kwargs):
    """launch_local_cluster, with its processes checked gone and killed in any case."""
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("kill_grace", 2)
    with LocalCluster(cmd, **kwargs) as cluster:
        try:
            result = cluster.start().wait()
            assert_none_left(all_pids(result))
            return result
        finally:
            kill_leftovers([p for t in cluster.tasks.values() for p in t.pids])


def reported(result, task):
    return [json.loads(line) for line in result.tasks[task].lines if line.startswith('{"name"')]


# The multi-process tests run 3 times to catch races. Those that start TensorFlow
# (the CLI imports it with the trainer package, ~10 s) run once unless
# TRAINER_CLUSTER_TEST_REPEAT says more.
REPEAT = [pytest.param(i, id=f"run{i}") for i in range(3)]
REPEAT_TF = [pytest.param(i, id=f"run{i}")
             for i in range(int(os.environ.get("TRAINER_CLUSTER_TEST_REPEAT", "1")))]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("_", REPEAT)
def test_two_workers_and_evaluator_get_their_tf_config(script, tmp_path, _):
    done = [tmp_path / "worker1", tmp_path / "evaluator0"]
    plans = {"worker:0": f"err:to-stderr,await:{done[0]}+{done[1]},sleep:0.5,exit:0",
             "worker:1": f"err:to-stderr,touch:{done[0]},exit:0",
             "evaluator:0": f"err:to-stderr,touch:{done[1]},exit:0"}
    result = run(command(script, plans), workers=2, evaluator=1)
    assert result.exit_code == 0 and result.failures == [] and not result.timed_out
    assert sorted(result.tasks) == ["evaluator:0", "worker:0", "worker:1"]
    assert result.chief == "worker:0"
    addresses = result.cluster["worker"]
    assert list(result.cluster) == ["worker"] and len(set(addresses)) == 2
    assert all(re.fullmatch(r"127\.0\.0\.1:\d+", a) for a in addresses)
    for name, task in result.tasks.items():
        (printed,) = reported(result, name)
        kind, index = name.split(":")
        assert printed["tf_config"] == {"cluster": result.cluster,
                                        "task": {"type": kind, "index": int(index)}}
        assert printed["pid"] == task.pid
        assert task.returncode == 0 or (task.stopped and name != "worker:0")
        assert "to-stderr" in task.lines
    assert "worker:0 exited with code 0" in result.output("cluster")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("_", REPEAT)
def test_chief_end_stops_workers_and_ps_and_lets_the_evaluator_finish(script, tmp_path, _):
    ready = {name: tmp_path / name.replace(":", "") for name in
             ("worker:0", "worker:1", "ps:0", "evaluator:0")}
    plans = {"chief:0": f"await:{'+'.join(map(str, ready.values()))},exit:0",
             "worker:0": f"touch:{ready['worker:0']},hang",
             "worker:1": f"ignore_term,touch:{ready['worker:1']},hang",
             "ps:0": f"child,touch:{ready['ps:0']},hang",
             "evaluator:0": f"touch:{ready['evaluator:0']},sleep:2,err:last-eval,exit:0"}
    started = time.monotonic()
    result = run(command(script, plans), workers=2, chief=True, ps=1, evaluator=1,
                 evaluator_grace=30, kill_grace=1)
    assert time.monotonic() - started < 30
    assert result.exit_code == 0 and result.failures == [] and result.chief == "chief:0"
    tasks = result.tasks
    assert tasks["chief:0"].returncode == 0 and not tasks["chief:0"].stopped
    assert tasks["worker:0"].returncode == -signal.SIGTERM and tasks["worker:0"].stopped
    assert tasks["worker:1"].returncode == -signal.SIGKILL and tasks["worker:1"].stopped
    assert tasks["ps:0"].stopped
    assert tasks["evaluator:0"].returncode == 0 and not tasks["evaluator:0"].stopped
    assert "last-eval" in tasks["evaluator:0"].lines
    log = result.output("cluster")
    assert "the chief chief:0 ended (code 0); stopping worker:0, worker:1, ps:0" in log
    assert "worker:1 did not stop 1s after SIGTERM; sending SIGKILL" in log


@pytest.mark.timeout(120)
@pytest.mark.parametrize("_", REPEAT)
def test_evaluator_past_its_grace_is_stopped_and_chief_code_is_the_exit_code(script, _):
    result = run(command(script, {"chief:0": "sleep:0.5,exit:3", "worker:0": "exit:0",
                                  "evaluator:0": "hang"}),
                 workers=1, chief=True, evaluator=1, evaluator_grace=1, kill_grace=1)
    assert result.exit_code == 3 and result.failures == [("chief:0", 3)]
    assert result.tasks["evaluator:0"].stopped
    assert "evaluator:0 still runs 1s after the chief ended; stopping it" in result.output("cluster")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("_", REPEAT)
def test_a_crashed_worker_is_reported_and_stops_the_cluster(script, _):
    result = run(command(script, {"worker:0": "hang", "worker:1": "sleep:0.3,exit:5",
                                  "evaluator:0": "hang"}), workers=2, evaluator=1)
    assert result.exit_code == 5 and result.failures == [("worker:1", 5)] and not result.timed_out
    assert "worker:1 exited with code 5 before the chief finished; stopping the cluster" \
        in result.output("cluster")
    assert result.tasks["worker:0"].stopped and result.tasks["evaluator:0"].stopped


@pytest.mark.timeout(120)
@pytest.mark.parametrize("_", REPEAT)
def test_timeout_kills_a_hanging_cluster(script, _):
    started = time.monotonic()
    result = run(command(script, {"worker:0": "child,hang", "worker:1": "ignore_term,hang"}),
                 workers=2, timeout=2, kill_grace=1)
    assert time.monotonic() - started < 15
    assert result.exit_code == 124 and result.timed_out
    assert all(t.stopped for t in result.tasks.values()), (result.tasks, result.lines)
    assert "timeout: the cluster ran longer than 2s" in result.output("cluster")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("_", REPEAT)
def test_crashed_and_killed_tasks_restart_with_the_same_tf_config(script, tmp_path, _):
    marker, finish = tmp_path / "crashed", tmp_path / "finish"
    plans = {"worker:0": f"await:{finish},exit:0", "worker:1": f"crash_once:{marker},hang"}
    with LocalCluster(command(script, plans), workers=2, max_restarts=2, timeout=60,
                      kill_grace=1) as cluster:
        try:
            cluster.start()
            deadline = time.monotonic() + 30
            runs = lambda: sum(l.startswith('{"name"') for l in cluster.tasks["worker:1"].lines)  # noqa: E731
            while runs() < 2 and time.monotonic() < deadline:   # crashed once, restarted
                time.sleep(0.05)
            cluster.kill("worker:1")   # SIGKILL, as if the machine lost it: restarted again
            while runs() < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            finish.touch()   # now the chief ends
            result = cluster.wait()
            assert_none_left(all_pids(result))
        finally:
            kill_leftovers([p for t in cluster.tasks.values() for p in t.pids])
    worker = result.tasks["worker:1"]
    assert result.exit_code == 0 and result.failures == [] and worker.restarts == 2
    assert len(worker.pids) == 3 and worker.stopped
    configs = [r["tf_config"] for r in reported(result, "worker:1")]
    assert len(configs) == 3 and all(c == configs[0] for c in configs)
    log = result.output("cluster")
    assert "worker:1 exited with code 7; restarting it (1 of 2 restarts)" in log
    assert "worker:1 exited with code -9; restarting it (2 of 2 restarts)" in log


def test_bad_arguments():
    with pytest.raises(ValueError, match="needs a chief"):
        LocalCluster(["true"], workers=0)
    with pytest.raises(ValueError, match="at most 1 evaluator"):
        LocalCluster(["true"], evaluator=2)
    with pytest.raises(ValueError, match="timeout=-1"):
        LocalCluster(["true"], timeout=-1)
    with pytest.raises(FileNotFoundError):
        launch_local_cluster(["/nonexistent/command"], workers=1, timeout=10)


def cli(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "trainer.cluster", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("_", REPEAT_TF)
def test_cli_prefixes_lines_and_returns_the_crash_code(script, _):
    plans = {"worker:0": "hang", "worker:1": "sleep:0.5,err:boom,exit:3"}
    proc = cli(["--worker", "2", "--evaluator", "1", "--timeout", "60", "--kill_grace", "1",
                "--", sys.executable, str(script), json.dumps(plans)])
    try:
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 3, err
    assert re.search(r'^\[worker:1\] \{"name": "worker:1"', out, re.M)
    assert re.search(r'^\[evaluator:0\] \{"name": "evaluator:0"', out, re.M)
    assert "[worker:1] boom" in err.splitlines()
    assert "[cluster] worker:1 exited with code 3 before the chief finished; stopping the cluster" in err
    assert "[cluster] exit code 3" in err
    pids = [int(p) for p in re.findall(r"\[cluster\] started \S+ \(pid (\d+)\)", err)]
    assert len(pids) == 3
    assert_none_left(pids)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("_", REPEAT_TF)
def test_cli_sigterm_stops_every_task(script, _):
    proc = cli(["--worker", "2", "--ps", "1", "--timeout", "120", "--kill_grace", "1", "--",
                sys.executable, str(script), json.dumps({"*": "child,hang"})])
    pids = []
    try:
        deadline = time.monotonic() + 120
        lines = []
        while time.monotonic() < deadline:   # wait until each task has started its child
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if sum('{"child"' in l for l in lines) == 3:
                break
        assert sum('{"child"' in l for l in lines) == 3, lines
        pids = [json.loads(l.split("] ", 1)[1])["pid"] for l in lines if '{"name"' in l]
        pids += [json.loads(l.split("] ", 1)[1])["child"] for l in lines if '{"child"' in l]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        assert "[cluster] the launcher got SIGTERM; stopping every task" in err
        assert len(pids) == 6
        assert_none_left(pids)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        kill_leftovers(pids)


MWMS_TASK = textwrap.dedent('''
    import json, os
    import tensorflow as tf
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    @tf.function
    def step():
        ctx = tf.distribute.get_replica_context()
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(float(index + 1)))
    value = strategy.experimental_local_results(strategy.run(step))[0]
    print("ALLREDUCE", strategy.num_replicas_in_sync, float(value), flush=True)
    ''')


@pytest.mark.timeout(240)
@pytest.mark.parametrize("_", REPEAT_TF)
def test_two_tensorflow_workers_all_reduce_with_multi_worker_mirrored(tmp_path, _):
    path = tmp_path / "mwms.py"
    path.write_text(MWMS_TASK)
    result = run([sys.executable, str(path)], workers=2, timeout=180, kill_grace=5,
                 env={"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"})
    detail = "\n".join(f"[{n}] {l}" for n, l in result.lines[-40:])
    assert result.exit_code == 0 and not result.timed_out, detail
    for name in ("worker:0", "worker:1"):
        assert "ALLREDUCE 2 3.0" in result.tasks[name].lines, detail
