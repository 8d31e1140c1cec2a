"""Models, their versions, and the availability-preserving swap between them.

The manager polls every model's base path. A new numeric version directory is
loaded once it has stopped changing for one poll (so a directory that is
still being written is never loaded), warmed up, and only then made
available; versions the policy no longer wants are unloaded afterwards, and
only while some wanted version is available. A directory that fails to load
is retried with backoff and is never served.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from tensorflow_serving.apis import get_model_status_pb2

from serving import errors
from serving import model_source
from serving import names
from serving import warmup
from serving.batching import BatchScheduler
from serving.config_files import ModelSpecConfig
from serving.servable import Servable
from serving.servable import ServableOptions

_log = logging.getLogger(__name__)
State = get_model_status_pb2.ModelVersionStatus.State

LOADED = "load"
UNLOADED = "unload"
LOAD_FAILED = "load_error"
MAX_RETRY_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class ManagerOptions:
    """How the manager finds, loads and warms up versions.

    Args:
        file_system_poll_wait_seconds: Seconds between base-path polls; 0
            polls once at start.
        enable_model_warmup: Replay ``assets.extra`` warmup requests.
        num_request_iterations_for_warmup: Times each warmup request runs.
        allow_version_labels_for_unavailable_models: Allow a config reload to
            point a label at a version that is not available yet.
        scheduler: Batch scheduler shared by all servables, or ``None``.
        servable: How each version is loaded and answered (TF Lite,
            method-name check, response encoding).
    """

    file_system_poll_wait_seconds: float = 1.0
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 1
    allow_version_labels_for_unavailable_models: bool = False
    scheduler: BatchScheduler | None = None
    servable: ServableOptions = dataclasses.field(default_factory=ServableOptions)


@dataclasses.dataclass
class VersionStatus:
    """What GetModelStatus reports for one version."""

    version: int
    state: int
    error_code: str = "OK"
    error_message: str = ""


@dataclasses.dataclass
class _Record:
    state: int = State.START
    error: str = ""
    failed_fingerprint: model_source.Fingerprint | None = None
    attempts: int = 0
    next_retry: float = 0.0


@dataclasses.dataclass
class _Model:
    config: ModelSpecConfig
    servables: dict[int, Servable] = dataclasses.field(default_factory=dict)
    records: dict[int, _Record] = dataclasses.field(default_factory=dict)
    last_seen: dict[int, model_source.Fingerprint] = dataclasses.field(default_factory=dict)
    polled: bool = False


class ModelManager:
    """Serves the versions of the configured models.

    Args:
        specs: The models to serve.
        options: Polling, warmup and batching settings.
        on_event: Called with ``(event, model_name, version)`` for ``"load"``,
            ``"unload"`` and ``"load_error"`` events.

    Example:
        >>> m = ModelManager([ModelSpecConfig("taxi", "/models/taxi")])  # doctest: +SKIP
        >>> m.start(); m.resolve_latest("taxi").version                 # doctest: +SKIP
    """

    def __init__(self, specs: list[ModelSpecConfig], *, options: ManagerOptions | None = None,
                 on_event: Callable[[str, str, int], None] | None = None):
        self.options = options or ManagerOptions()
        self._on_event = on_event or (lambda *_: None)
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._models: dict[str, _Model] = {s.name: _Model(s) for s in specs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Loads what is on disk now, then keeps polling in the background."""
        self.poll()
        if self.options.file_system_poll_wait_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="model-poll",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stops polling (loaded versions stay in memory until released)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.options.file_system_poll_wait_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - polling must survive anything.
                _log.exception("Polling the model base paths failed")

    # -- polling -----------------------------------------------------------

    def poll(self) -> None:
        """Polls every model's base path once, loading and unloading versions."""
        with self._poll_lock:
            with self._lock:
                models = list(self._models.values())
            for model in models:
                self._poll_model(model)

    def _poll_model(self, model: _Model) -> None:
        config = model.config
        on_disk = model_source.scan_versions(config.base_path)
        prints = {v: model_source.fingerprint(p) for v, p in on_disk.items()}
        aspired = config.version_policy.select(on_disk)
        for version in sorted(aspired, reverse=True):
            if version in model.servables:
                continue
            record = model.records.setdefault(version, _Record())
            stable = model.last_seen.get(version) == prints[version]
            if model.polled and not stable:
                continue  # New or still changing: look again next poll.
            if record.failed_fingerprint == prints[version] and time.monotonic() < record.next_retry:
                continue
            self._load(model, version, on_disk[version], record, prints[version])
        model.last_seen = prints
        model.polled = True
        self._unload_unwanted(model, aspired, on_disk)

    def _load(self, model, version, path, record, fingerprint) -> None:
        name = model.config.name
        record.state = State.LOADING
        try:
            servable = Servable(name, version, path, scheduler=self.options.scheduler,
                                options=self.options.servable)
            if self.options.enable_model_warmup:
                warmup.run_warmup(
                    servable,
                    num_request_iterations=self.options.num_request_iterations_for_warmup,
                )
        except Exception as e:  # noqa: BLE001 - any load failure is retried, not fatal.
            record.state = State.END
            record.error = f"Loading {path} failed: {type(e).__name__}: {e}"
            record.failed_fingerprint = fingerprint
            record.attempts += 1
            delay = min(self.options.file_system_poll_wait_seconds * 2 ** record.attempts,
                        MAX_RETRY_SECONDS)
            record.next_retry = time.monotonic() + delay
            _log.warning("Model %s version %d not loaded (retrying): %s", name, version,
                         record.error)
            self._on_event(LOAD_FAILED, name, version)
            return
        with self._lock:
            model.servables[version] = servable
            record.state = State.AVAILABLE
            record.error = ""
            record.failed_fingerprint = None
        _log.info("Model %s version %d is available", name, version)
        self._on_event(LOADED, name, version)

    def _unload_unwanted(self, model: _Model, aspired: set[int], on_disk: dict) -> None:
        if not aspired & set(model.servables):
            return  # Keep serving what we have until a wanted version is up.
        for version in sorted(set(model.servables) - aspired):
            self._unload(model, version)
        for version in list(model.records):
            if version not in on_disk and version not in model.servables:
                del model.records[version]

    def _unload(self, model: _Model, version: int) -> None:
        with self._lock:
            model.servables.pop(version, None)
            model.records.setdefault(version, _Record()).state = State.END
        _log.info("Model %s version %d unloaded", model.config.name, version)
        self._on_event(UNLOADED, model.config.name, version)

    # -- configuration -----------------------------------------------------

    def model_names(self) -> list[str]:
        """Names of the configured models."""
        with self._lock:
            return sorted(self._models)

    def available_versions(self, name: str) -> list[int]:
        """Versions of ``name`` that serve requests now (empty if unknown)."""
        with self._lock:
            model = self._models.get(name)
            return sorted(model.servables) if model else []

    def has_model(self, name: str) -> bool:
        """Whether ``name`` is a configured model."""
        with self._lock:
            return name in self._models

    def reload_config(self, specs: list[ModelSpecConfig]) -> None:
        """Replaces the set of models (HandleReloadConfigRequest), then polls.

        Raises:
            ServingError: FAILED_PRECONDITION if a label points at a version
                that is not available (unless allowed by the options).
        """
        with self._poll_lock:
            with self._lock:
                old = self._models
                if not self.options.allow_version_labels_for_unavailable_models:
                    for spec in specs:
                        current = old.get(spec.name)
                        if current is None or current.config.base_path != spec.base_path:
                            continue
                        for label, version in spec.version_labels.items():
                            if version not in current.servables:
                                raise errors.failed_precondition(
                                    f"Request to assign label {label!r} to version {version} "
                                    f"of model {spec.name!r}, which is not currently "
                                    "available for inference; load that version first or "
                                    "start with --allow_version_labels_for_unavailable_models."
                                )
                new = {}
                for spec in specs:
                    current = old.get(spec.name)
                    if current is not None and current.config.base_path == spec.base_path:
                        current.config = spec
                        new[spec.name] = current
                    else:
                        new[spec.name] = _Model(spec)
                removed = [m for name, m in old.items() if new.get(name) is not m]
                self._models = new
            for model in removed:
                for version in sorted(model.servables):
                    self._unload(model, version)
            for model in new.values():
                self._poll_model(model)

    # -- lookup ------------------------------------------------------------

    def _model(self, name: str) -> _Model:
        if not name:
            raise errors.invalid_argument(
                "ModelSpec.name is empty; set it to the served model's name.")
        names.check_model_name(name)
        model = self._models.get(name)
        if model is None:
            raise errors.not_found(
                f"Servable not found for request: model {name!r} is not served; served "
                f"models: {sorted(self._models)}."
            )
        return model

    def label_version(self, name: str, label: str) -> int:
        """The version a label points to."""
        with self._lock:
            model = self._model(name)
            version = model.config.version_labels.get(label)
            if version is None:
                raise errors.invalid_argument(
                    f"Unrecognized servable version label: {label!r} for model {name!r}; "
                    f"known labels: {sorted(model.config.version_labels)}."
                )
            return version

    def label_version_or_none(self, name: str, label: str) -> int | None:
        """The version ``label`` points to, or ``None`` if it is not defined."""
        with self._lock:
            model = self._models.get(name)
            return model.config.version_labels.get(label) if model else None

    def resolve(self, name: str, *, version: int | None = None,
                label: str | None = None) -> Servable:
        """The servable for a request: a version, a label, or the latest.

        Raises:
            ServingError: NOT_FOUND for unknown models and unavailable
                versions; INVALID_ARGUMENT for unknown labels or bad names.
        """
        if label is not None:
            version = self.label_version(name, label)
        with self._lock:
            model = self._model(name)
            if version is None:
                if not model.servables:
                    raise errors.not_found(
                        f"Servable not found for request: Latest({name}); no version of "
                        f"model {name!r} is available yet (base path "
                        f"{model.config.base_path!r})."
                    )
                return model.servables[max(model.servables)]
            servable = model.servables.get(version)
            if servable is None:
                what = f" (label {label!r})" if label is not None else ""
                raise errors.not_found(
                    f"Servable not found for request: Specific({name}, {version}){what}; "
                    f"available versions: {sorted(model.servables)}."
                )
            return servable

    def resolve_spec(self, model_spec) -> Servable:
        """``resolve`` for a ``tensorflow.serving.ModelSpec`` message."""
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version":
            return self.resolve(model_spec.name, version=model_spec.version.value)
        if choice == "version_label":
            return self.resolve(model_spec.name, label=model_spec.version_label)
        return self.resolve(model_spec.name)

    def status(self, name: str, *, version: int | None = None,
               label: str | None = None) -> list[VersionStatus]:
        """Version states of a model, newest first (GetModelStatus)."""
        if label is not None:
            version = self.label_version(name, label)
        with self._lock:
            model = self._model(name)
            records = dict(model.records)
        if version is not None:
            if version not in records:
                raise errors.not_found(
                    f"Could not find version {version} of model {name!r}; known versions: "
                    f"{sorted(records)}."
                )
            records = {version: records[version]}
        if not records:
            raise errors.not_found(
                f"Could not find any versions of model {name!r} under "
                f"{model.config.base_path!r}; push a numeric version directory there."
            )
        return [
            VersionStatus(
                version=v,
                state=r.state,
                error_code="UNKNOWN" if r.error else "OK",
                error_message=r.error,
            )
            for v, r in sorted(records.items(), reverse=True)
        ]
