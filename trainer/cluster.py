"""A local cluster launcher: several TF_CONFIG tasks as processes on one machine.

    python -m trainer.cluster --worker 2 --evaluator 1 --timeout 600 -- python my_train.py

starts one process per task (``chief``/``worker``/``ps`` on free loopback
ports, plus the ``evaluator``, which is not part of the cluster), each with its
own ``TF_CONFIG`` and in its own session (process group). Every line a task
prints comes out prefixed with its task (``[worker:1] ...``); the launcher's own
lines start with ``[cluster]`` and go to stderr.

The cluster ends with its chief (``chief:0`` with ``--chief``, else
``worker:0``): the other workers and the ps are then stopped (SIGTERM, SIGKILL
after ``--kill_grace``) and the evaluator gets ``--evaluator_grace`` seconds to
finish its last evaluation. A task that crashes (exits non-zero on its own)
before that stops the whole cluster, unless ``--max_restarts`` lets it start
again with the same TF_CONFIG. ``--timeout`` bounds the whole run. SIGINT or
SIGTERM to the launcher stops every task.

Exit code: the chief's; else the exit code of the first task that crashed
(128 + N for a task killed by signal N); 124 after ``--timeout``; 128 + N when
the launcher itself got signal N.

Free ports: each address is a socket bound to port 0 and held open until just
before the tasks start, so the launcher's ports are distinct and no other
process gets them while the launcher holds them. Between closing them and a
task's server binding its port, another process could still take one (the task
then fails to start its server); rerun in that case.

POSIX only. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Mapping, Sequence

__all__ = ["ClusterResult", "LocalCluster", "TaskResult", "launch_local_cluster", "main"]

TIMEOUT_EXIT_CODE = 124
_POLL_SECS = 0.05
_READER_JOIN_SECS = 5.0


@dataclasses.dataclass
class TaskResult:
    """One task of the cluster.

    returncode: the exit code of its last process; -N when killed by signal N;
        None while it runs.
    stopped: its last process was stopped by the launcher (cluster end,
        timeout, failure elsewhere or a signal to the launcher).
    pids: the pid of each process started for it (more than one after restarts).
    lines: its stdout and stderr lines, without the prefix, in arrival order.
    """

    task_type: str
    index: int
    tf_config: dict
    pids: list = dataclasses.field(default_factory=list)
    returncode: int | None = None
    stopped: bool = False
    restarts: int = 0
    lines: list = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.task_type}:{self.index}"

    @property
    def pid(self) -> int | None:
        return self.pids[-1] if self.pids else None


@dataclasses.dataclass
class ClusterResult:
    """What a cluster run ended with.

    exit_code: the launcher's exit code (see the module docstring).
    chief: the name of the task whose end ends the cluster.
    tasks: name ("worker:1") -> TaskResult.
    lines: (task name or "cluster", line) in arrival order, the launcher's own
        lines under "cluster".
    failures: (task name, exit code) of each task that crashed.
    timed_out / interrupted: the run was cut by ``timeout`` / by a signal or
        `LocalCluster.stop`.
    cluster: the ``cluster`` part of every task's TF_CONFIG.
    """

    exit_code: int
    chief: str
    tasks: dict
    lines: list
    failures: list
    timed_out: bool
    interrupted: bool
    cluster: dict

    def output(self, task: str) -> str:
        """The lines of one task ("worker:0", or "cluster"), joined."""
        return "\n".join(line for name, line in self.lines if name == task)


class LocalCluster:
    """Runs ``command`` once per task of a local TF_CONFIG cluster.

    `start` returns once every task is started; a supervisor thread then
    handles exits, restarts, the chief's end and the timeout, and `wait`
    returns the `ClusterResult`. Use `launch_local_cluster` to run to the end;
    use this class to act while it runs (e.g. `kill` a worker)::

        with LocalCluster([sys.executable, "train.py"], workers=2, max_restarts=1,
                          timeout=300) as cluster:
            cluster.start()
            ...
            cluster.kill("worker:1")      # SIGKILL; restarted (max_restarts=1)
            result = cluster.wait()

    Args:
        command: the argv every task runs (TF_CONFIG tells it which task it is).
        workers: number of ``worker`` tasks.
        chief: add a ``chief`` task (then it, not worker 0, is the chief).
        evaluator: number of ``evaluator`` tasks (0 or 1); not in ``cluster``.
        ps: number of ``ps`` tasks.
        timeout: seconds the whole run may take; None: no bound.
        evaluator_grace: seconds the evaluator may keep running after the
            chief ended, to finish its last evaluation.
        kill_grace: seconds between SIGTERM and SIGKILL when stopping a task.
        max_restarts: how many times each task is restarted after a crash.
        env: extra environment variables for every task.
        cwd: the tasks' working directory.
        host: the address every task listens on.
        echo: print the prefixed lines to ``stdout``/``stderr`` as they come.
    """

    def __init__(self, command: Sequence[str], workers: int = 2, *, chief: bool = False,
                 evaluator: int = 0, ps: int = 0, timeout: float | None = None,
                 evaluator_grace: float = 60.0, kill_grace: float = 10.0, max_restarts: int = 0,
                 env: Mapping[str, str] | None = None, cwd: str | None = None,
                 host: str = "127.0.0.1", echo: bool = False,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None):
        command = [os.fspath(c) for c in ([command] if isinstance(command, str) else command)]
        if not command:
            raise ValueError("LocalCluster needs a command to run, e.g. ['python', 'train.py'].")
        evaluator = int(evaluator)
        for name, value in (("workers", workers), ("evaluator", evaluator), ("ps", ps),
                            ("max_restarts", max_restarts)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"LocalCluster got {name}={value!r}; expected an int >= 0.")
        if evaluator > 1:
            raise ValueError(f"LocalCluster got evaluator={evaluator}; at most 1 evaluator task "
                             "is supported (as in tf.estimator).")
        if not chief and workers < 1:
            raise ValueError("LocalCluster needs a chief: give workers >= 1 (worker 0 is the "
                             "chief) or chief=True.")
        for name, value in (("timeout", timeout), ("evaluator_grace", evaluator_grace),
                            ("kill_grace", kill_grace)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"LocalCluster got {name}={value!r}; expected seconds >= 0.")
        self.command = command
        self.timeout = timeout
        self.evaluator_grace = float(evaluator_grace)
        self.kill_grace = float(kill_grace)
        self.max_restarts = max_restarts
        self.env = dict(env or {})
        self.cwd = cwd
        self.host = host
        self.echo = echo
        self._out = stdout
        self._err = stderr
        self._counts = {"chief": int(bool(chief)), "worker": workers, "ps": ps}
        self._evaluators = evaluator
        self.chief = "chief:0" if chief else "worker:0"
        self.cluster: dict = {}
        self.tasks: dict = {}
        self._procs: dict = {}
        self._readers: list = []
        self._signalled_at: dict = {}   # name -> (time of SIGTERM, SIGKILL sent)
        self._lines: list = []
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        self._interrupt_code: int | None = None
        self._started = self._finished = False
        self._timed_out = self._stopping_all = self._chief_ended = False
        self._failures: list = []
        self._result: ClusterResult | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> "LocalCluster":
        """Picks the ports, writes each TF_CONFIG and starts every task."""
        if self._started:
            raise RuntimeError("LocalCluster.start was already called.")
        self._started = True
        sockets = []
        try:
            for kind in ("chief", "worker", "ps"):
                for _ in range(self._counts[kind]):
                    sockets.append(_bind_free_port(self.host))
            ports = iter(s.getsockname()[1] for s in sockets)
            for kind in ("chief", "worker", "ps"):
                if self._counts[kind]:
                    self.cluster[kind] = [f"{_host_in_address(self.host)}:{next(ports)}"
                                          for _ in range(self._counts[kind])]
            for kind in ("chief", "worker", "ps"):
                for index in range(self._counts[kind]):
                    self._add_task(kind, index)
            for index in range(self._evaluators):
                self._add_task("evaluator", index)
        finally:
            for s in sockets:   # released just before the tasks start
                s.close()
        self._started_at = time.monotonic()
        self._say(f"cluster {json.dumps(self.cluster)}; the chief is {self.chief}")
        try:
            for name in self.tasks:
                self._spawn(name)
        except BaseException:
            self._kill_all(signal.SIGKILL)
            self._join_readers()
            self._finished = True
            raise
        self._supervisor = threading.Thread(target=self._supervise, daemon=True,
                                            name="cluster-supervisor")
        self._supervisor.start()
        return self

    def wait(self, timeout: float | None = None) -> ClusterResult | None:
        """Waits for the end of the cluster and returns its result.

        With ``timeout``, returns None if the cluster still runs after that many
        seconds. An exception here (e.g. KeyboardInterrupt) kills every task.
        """
        if not self._started:
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self._supervisor.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._supervisor.join(0.2 if left is None else min(0.2, left))
        except BaseException:
            self.stop("interrupted")
            self._kill_all(signal.SIGKILL)
            self._supervisor.join(self.kill_grace + _READER_JOIN_SECS + 5)
            raise
        return self._result

    @property
    def running(self) -> bool:
        """Whether the cluster has not ended yet."""
        return self._started and self._result is None

    def _supervise(self) -> None:
        evaluator_deadline = None
        try:
            while True:
                now = time.monotonic()
                for name, proc in list(self._procs.items()):
                    rc = proc.poll()
                    if rc is None or self.tasks[name].returncode is not None:
                        continue
                    self._on_exit(name, rc)
                    if name == self.chief and self.tasks[name].returncode is not None \
                            and not self._chief_ended:
                        self._chief_ended = True
                        if self._stop_reason is None:
                            evaluator_deadline = self._on_chief_end(now)
                if self._stop_reason is None and self.timeout is not None \
                        and now - self._started_at > self.timeout:
                    self._timed_out = True
                    self._begin_stop(f"timeout: the cluster ran longer than {self.timeout:g}s; "
                                     "stopping every task")
                if evaluator_deadline is not None and now > evaluator_deadline:
                    evaluator_deadline = None
                    for name in self._running(kinds=("evaluator",)):
                        self._say(f"{name} still runs {self.evaluator_grace:g}s after the chief "
                                  "ended; stopping it")
                        self._terminate(name)
                self._escalate(now)
                if all(task.returncode is not None for task in self.tasks.values()):
                    break   # every exit seen by the loop above (never a fresh poll here)
                time.sleep(_POLL_SECS)
        finally:
            self._kill_all(signal.SIGKILL)
            self._join_readers()
            result = self._make_result()
            self._say(f"exit code {result.exit_code}")
            result.lines = list(self._lines)
            self._finished = True
            self._result = result

    def stop(self, reason: str = "stopped", exit_code: int | None = None) -> None:
        """Stops every task (thread- and signal-handler-safe); `wait` for the result.

        A second call while stopping sends SIGKILL at once.
        """
        if self._stop_reason is not None:
            self._kill_all(signal.SIGKILL)
            return
        self._interrupt_code = exit_code if exit_code is not None else 1
        self._stop_reason = reason

    def kill(self, task: str, sig: int = signal.SIGKILL) -> None:
        """Sends ``sig`` to one task's process group, as if it died on its own."""
        proc = self._procs[task]
        if proc.poll() is None:
            _signal_group(proc.pid, sig)

    def pid(self, task: str) -> int | None:
        """The pid of the task's current process."""
        return self.tasks[task].pid

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc) -> None:
        if self._started and not self._finished:
            self.stop("the with-block ended")
            self._kill_all(signal.SIGKILL)
            self._supervisor.join(self.kill_grace + _READER_JOIN_SECS + 5)

    # -- internals ------------------------------------------------------------
    def _add_task(self, kind: str, index: int) -> None:
        config = {"cluster": self.cluster, "task": {"type": kind, "index": index}}
        self.tasks[f"{kind}:{index}"] = TaskResult(kind, index, config)

    def _spawn(self, name: str) -> None:
        task = self.tasks[name]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.env)
        env["TF_CONFIG"] = json.dumps(task.tf_config)
        try:
            proc = subprocess.Popen(self.command, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except OSError as e:
            self._say(f"cannot start {name}: {e}")
            raise
        task.pids.append(proc.pid)
        task.returncode, task.stopped = None, False
        self._signalled_at.pop(name, None)
        self._procs[name] = proc
        for pipe, stream in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            reader = threading.Thread(target=self._read, args=(name, pipe, stream), daemon=True,
                                      name=f"cluster-{name}-{stream}")
            reader.start()
            self._readers.append(reader)
        self._say(f"started {name} (pid {proc.pid})"
                  + (f" at {self.cluster[task.task_type][task.index]}"
                     if task.task_type != "evaluator" else ""))

    def _read(self, name: str, pipe, stream: str) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                self._emit(name, raw.decode("utf-8", "replace").rstrip("\r\n"), stream)

    def _emit(self, name: str, line: str, stream: str) -> None:
        with self._lock:
            self._lines.append((name, line))
            if name in self.tasks:
                self.tasks[name].lines.append(line)
            if self.echo:
                out = (self._err or sys.stderr) if stream == "stderr" else (self._out or sys.stdout)
                try:
                    out.write(f"[{name}] {line}\n")
                    out.flush()
                except (OSError, ValueError):   # e.g. piped into `head`: keep draining the task
                    self.echo = False

    def _say(self, message: str) -> None:
        self._emit("cluster", message, "stderr")

    def _on_exit(self, name: str, rc: int) -> None:
        task = self.tasks[name]
        task.returncode = rc
        if name in self._signalled_at:
            task.stopped = True
            return
        if rc == 0:
            self._say(f"{'the chief ' if name == self.chief else ''}{name} exited with code 0")
            return
        if task.restarts < self.max_restarts and self._stop_reason is None \
                and (not self._chief_ended or name == self.chief):
            task.restarts += 1
            self._say(f"{name} exited with code {rc}; restarting it "
                      f"({task.restarts} of {self.max_restarts} restarts)")
            self._spawn(name)
            return
        if name == self.chief:
            self._failures.append((name, rc))
            self._say(f"the chief {name} exited with code {rc}")
        elif not self._chief_ended:
            self._failures.append((name, rc))
            if self._stop_reason is None:
                self._begin_stop(f"{name} exited with code {rc} before the chief finished; "
                                 "stopping the cluster")
            else:
                self._say(f"{name} exited with code {rc}")
        elif task.task_type == "evaluator":
            self._failures.append((name, rc))   # its last evaluation failed
            self._say(f"{name} exited with code {rc}")
        else:   # e.g. a worker whose collective broke when the chief left
            self._say(f"{name} exited with code {rc} after the chief ended")

    def _on_chief_end(self, now: float) -> float | None:
        rc = self.tasks[self.chief].returncode
        others = self._running(kinds=("chief", "worker", "ps"))
        evaluators = self._running(kinds=("evaluator",))
        if others or evaluators:
            self._say(f"the chief {self.chief} ended (code {rc}); stopping "
                      + ", ".join(others or ["nothing else"])
                      + (f"; the evaluator has {self.evaluator_grace:g}s to finish"
                         if evaluators else ""))
        for name in others:
            self._terminate(name)
        return now + self.evaluator_grace if evaluators else None

    def _begin_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stopping_all = True
        self._say(reason)
        for name in self._running():
            self._terminate(name)

    def _terminate(self, name: str) -> None:
        if name not in self._signalled_at:
            self._signalled_at[name] = [time.monotonic(), False]
            _signal_group(self._procs[name].pid, signal.SIGTERM)

    def _escalate(self, now: float) -> None:
        # A stop requested from outside (signal handler, other thread).
        if self._stop_reason is not None and self._running() and not self._stopping_all:
            self._stopping_all = True
            if self._interrupt_code is not None:
                self._say(f"{self._stop_reason}; stopping every task")
            for name in self._running():
                self._terminate(name)
        for name, state in self._signalled_at.items():
            if not state[1] and now - state[0] > self.kill_grace \
                    and self._procs[name].poll() is None:
                state[1] = True
                self._say(f"{name} did not stop {self.kill_grace:g}s after SIGTERM; sending SIGKILL")
                _signal_group(self._procs[name].pid, signal.SIGKILL)

    def _running(self, kinds: Sequence[str] | None = None) -> list:
        return [name for name, proc in self._procs.items()
                if proc.poll() is None and (kinds is None or self.tasks[name].task_type in kinds)]

    def _kill_all(self, sig: int) -> None:
        for proc in list(self._procs.values()):
            _signal_group(proc.pid, sig)   # the group too: children of a finished leader

    def _join_readers(self) -> None:
        for proc in self._procs.values():
            try:
                proc.wait(timeout=self.kill_grace + 5)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + _READER_JOIN_SECS
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))

    def _make_result(self) -> ClusterResult:
        chief = self.tasks[self.chief]
        if self._timed_out:
            code = TIMEOUT_EXIT_CODE
        elif self._interrupt_code is not None:
            code = self._interrupt_code
        elif chief.returncode and not chief.stopped:
            code = _exit_code(chief.returncode)
        elif self._failures:
            code = _exit_code(self._failures[0][1])
        else:
            code = 0 if chief.returncode == 0 else _exit_code(chief.returncode or 1)
        return ClusterResult(exit_code=code, chief=self.chief, tasks=dict(self.tasks), lines=[],
                             failures=list(self._failures), timed_out=self._timed_out,
                             interrupted=self._interrupt_code is not None,
                             cluster=json.loads(json.dumps(self.cluster)))


def launch_local_cluster(command: Sequence[str], workers: int = 2, *, chief: bool = False,
                         evaluator: int = 0, ps: int = 0, timeout: float | None = None,
                         evaluator_grace: float = 60.0, kill_grace: float = 10.0,
                         max_restarts: int = 0, env: Mapping[str, str] | None = None,
                         cwd: str | None = None, host: str = "127.0.0.1",
                         echo: bool = False) -> ClusterResult:
    """Runs ``command`` as every task of a local cluster until the chief ends.

    See `LocalCluster` for the arguments and `ClusterResult` for the result.

    Example:
        >>> result = launch_local_cluster([sys.executable, "-c", "print('hi')"],
        ...                               workers=2, timeout=60)
        >>> result.exit_code, result.output("worker:0")
        (0, 'hi')
    """
    with LocalCluster(command, workers, chief=chief, evaluator=evaluator, ps=ps, timeout=timeout,
                      evaluator_grace=evaluator_grace, kill_grace=kill_grace,
                      max_restarts=max_restarts, env=env, cwd=cwd, host=host,
                      echo=echo) as cluster:
        return cluster.start().wait()


# -- helpers ------------------------------------------------------------------
def _bind_free_port(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
    except OSError:
        sock.close()
        raise
    return sock


def _host_in_address(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)   # each task leads its own session: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


# -- command line ---------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.cluster",
        description="Run a command as every task of a local TF_CONFIG cluster on this machine; "
                    "the cluster ends with its chief.",
        usage="python -m trainer.cluster --worker N [--chief] [--evaluator 1] [--ps K] "
              "[--timeout SECONDS] [options] -- COMMAND [ARGS...]")
    parser.add_argument("--worker", type=int, default=1, help="number of worker tasks (default 1)")
    parser.add_argument("--chief", action="store_true",
                        help="add a chief task (else worker 0 is the chief)")
    parser.add_argument("--evaluator", type=int, default=0, choices=(0, 1),
                        help="add an evaluator task (not part of the cluster)")
    parser.add_argument("--ps", type=int, default=0, help="number of ps tasks")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop everything after this many seconds (exit code 124)")
    parser.add_argument("--evaluator_grace", type=float, default=60.0,
                        help="seconds the evaluator may run after the chief ended (default 60)")
    parser.add_argument("--kill_grace", type=float, default=10.0,
                        help="seconds between SIGTERM and SIGKILL (default 10)")
    parser.add_argument("--max_restarts", type=int, default=0,
                        help="restart a crashed task up to this many times (default 0)")
    parser.add_argument("--host", default="127.0.0.1", help="address the tasks listen on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if "--" not in argv:
        parser.error("give the command after '--', e.g. -- python my_train.py")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    if not command:
        parser.error("the command after '--' is empty")
    try:
        cluster = LocalCluster(command, args.worker, chief=args.chief, evaluator=args.evaluator,
                               ps=args.ps, timeout=args.timeout,
                               evaluator_grace=args.evaluator_grace, kill_grace=args.kill_grace,
                               max_restarts=args.max_restarts, host=args.host, echo=True)
    except ValueError as e:
        parser.error(str(e))

    def on_signal(signum, frame):
        cluster.stop(f"the launcher got {signal.Signals(signum).name}", exit_code=128 + signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            cluster.start()
        except OSError as e:
            print(f"[cluster] cannot start {command[0]!r}: {e}", file=sys.stderr)
            return 127
        return cluster.wait().exit_code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
