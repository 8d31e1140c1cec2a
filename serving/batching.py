"""Server-side request batching, after TF Serving's shared batch scheduler.

Concurrent requests to the same signature (and same inner shapes) are queued
and run together: a batch runs when it holds ``max_batch_size`` rows or when
its oldest request has waited ``batch_timeout_micros``. ``num_batch_threads``
threads run batches; a queue holding ``max_enqueued_batches`` full batches
rejects new requests with UNAVAILABLE. Batches are padded up to the next
``allowed_batch_sizes`` entry by repeating their first row, and the padding is
dropped from the outputs.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Hashable

import grpc
import numpy as np

from serving import errors
from serving.config_files import BatchingOptions
from serving.errors import ServingError

_log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    size: int
    enqueued_at: float
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


@dataclasses.dataclass
class _Queue:
    run_fn: RunFn
    tasks: collections.deque = dataclasses.field(default_factory=collections.deque)
    rows: int = 0


class BatchScheduler:
    """Batches ``schedule`` calls per queue key and runs them on worker threads.

    Args:
        options: The batching parameters.

    Example:
        >>> s = BatchScheduler(BatchingOptions(max_batch_size=4, num_batch_threads=1))
        >>> s.schedule("k", lambda d: {"y": d["x"] * 2}, {"x": np.ones((1, 2))})["y"]
        array([[2., 2.]])
        >>> s.stop()
    """

    def __init__(self, options: BatchingOptions):
        self.options = options
        self.batch_size_counts: collections.Counter = collections.Counter()
        self._cond = threading.Condition()
        self._queues: dict[Hashable, _Queue] = {}
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def schedule(self, key: Hashable, run_fn: RunFn, inputs: dict[str, np.ndarray]) -> dict:
        """Runs ``run_fn`` on ``inputs`` as part of a batch and returns its rows.

        Args:
            key: Requests with equal keys may share a batch (same servable,
                signature and inner shapes).
            run_fn: Runs a whole batch: dict of inputs to dict of outputs, all
                with the batch as leading dimension.
            inputs: This request's inputs; all share the leading dimension.

        Raises:
            ServingError: INVALID_ARGUMENT if the request is larger than
                ``max_batch_size``; UNAVAILABLE if the queue is full or the
                scheduler stopped.
        """
        size = _batch_size(inputs)
        max_size = self.options.max_batch_size
        if size > max_size:
            raise errors.invalid_argument(
                f"Task size {size} is larger than maximum batch size {max_size}; "
                f"send at most {max_size} rows per request or raise max_batch_size "
                "in the batching parameters file."
            )
        task = _Task(inputs=inputs, size=size, enqueued_at=time.monotonic())
        with self._cond:
            if self._stopped:
                raise errors.unavailable("The batch scheduler is shutting down; retry.")
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(run_fn)
            batches_after = -(-(queue.rows + size) // max_size)
            if batches_after > self.options.max_enqueued_batches:
                raise errors.unavailable(
                    "The batch scheduling queue to which this task was submitted is "
                    f"full ({self.options.max_enqueued_batches} batches); retry later "
                    "or raise max_enqueued_batches."
                )
            queue.tasks.append(task)
            queue.rows += size
            # Wake a worker only when this changes what it waits for: a new
            # queue (a new deadline) or a full batch. Waking one per request
            # costs a GIL hand-off each and the worker would go back to sleep.
            if len(queue.tasks) == 1 or queue.rows >= max_size:
                self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def stop(self) -> None:
        """Stops the workers; queued requests fail with UNAVAILABLE."""
        with self._cond:
            self._stopped = True
            pending = [t for q in self._queues.values() for t in q.tasks]
            self._queues.clear()
            self._cond.notify_all()
        for task in pending:
            task.error = errors.unavailable("The batch scheduler stopped; retry.")
            task.done.set()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- worker side -------------------------------------------------------

    def _take_ready_batch(self, now: float):
        timeout = self.options.batch_timeout_micros / 1e6
        best_key, best_age = None, -1.0
        for key, queue in self._queues.items():
            if not queue.tasks:
                continue
            age = now - queue.tasks[0].enqueued_at
            if (queue.rows >= self.options.max_batch_size or age >= timeout) and age > best_age:
                best_key, best_age = key, age
        if best_key is None:
            return None, None
        queue = self._queues[best_key]
        batch, rows = [], 0
        while queue.tasks and rows + queue.tasks[0].size <= self.options.max_batch_size:
            task = queue.tasks.popleft()
            rows += task.size
            batch.append(task)
        queue.rows -= rows
        if not queue.tasks:
            del self._queues[best_key]
        return queue, batch

    def _next_wait(self, now: float) -> float | None:
        timeout = self.options.batch_timeout_micros / 1e6
        waits = [
            q.tasks[0].enqueued_at + timeout - now for q in self._queues.values() if q.tasks
        ]
        return max(min(waits), 0.0) if waits else None

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    queue, batch = self._take_ready_batch(time.monotonic())
                    if batch:
                        if self._queues:  # Left-over tasks: another worker may take them.
                            self._cond.notify()
                        break
                    self._cond.wait(self._next_wait(time.monotonic()))
            self._run_batch(queue.run_fn, batch)

    def _run_batch(self, run_fn: RunFn, batch: list[_Task]) -> None:
        rows = sum(t.size for t in batch)
        padded = _padded_size(rows, self.options.allowed_batch_sizes)
        self.batch_size_counts[padded] += 1
        try:
            merged = {
                key: np.concatenate([t.inputs[key] for t in batch], axis=0)
                for key in batch[0].inputs
            }
            if padded > rows:
                merged = {
                    k: np.concatenate([v, np.repeat(v[:1], padded - rows, axis=0)], axis=0)
                    for k, v in merged.items()
                }
            outputs = run_fn(merged)
            for key, value in outputs.items():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise errors.failed_precondition(
                        f"Batching needs every output to have the batch as its first "
                        f"dimension, but output {key!r} has shape {list(value.shape)} for "
                        f"a batch of {padded}; disable --enable_batching for this model."
                    )
            start = 0
            for task in batch:
                task.result = {k: v[start:start + task.size] for k, v in outputs.items()}
                start += task.size
        except ServingError as e:
            for task in batch:
                task.error = e
        except Exception as e:  # noqa: BLE001 - a bad batch must not kill the worker.
            _log.exception("Batch of %d rows failed", rows)
            for task in batch:
                task.error = ServingError(
                    grpc.StatusCode.INTERNAL, f"Batch execution failed: {e}")
        finally:
            for task in batch:
                task.done.set()


def _batch_size(inputs: dict[str, np.ndarray]) -> int:
    sizes = {v.shape[0] if v.ndim else -1 for v in inputs.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise errors.invalid_argument(
            "With batching on, every input needs the same leading (batch) dimension; "
            "got shapes " + ", ".join(f"{k}: {list(v.shape)}" for k, v in inputs.items())
            + "."
        )
    return sizes.pop()


def _padded_size(rows: int, allowed: tuple[int, ...]) -> int:
    for size in allowed:
        if size >= rows:
            return size
    return rows
