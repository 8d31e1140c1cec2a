"""Local working copies for a pipeline whose root is an object-store URL (``gs://``, ``s3://``...).

The executors (Beam, TensorFlow Transform, the Trainer, TFMA) read and write local directories.
With a URL root the launcher runs them on a local *staging* directory, as Kubeflow's own
launcher does, and `components.fileio` moves the artifacts:

- **inputs** are downloaded once per artifact id into ``<staging>/artifacts/<id>`` (a published
  artifact never changes, so the copy is reused by every later node on this machine; a download
  goes to a private directory first and is renamed into place, so two processes never see a
  half-written copy);
- **outputs** are written to ``<staging>/outputs/<node>/<key>/<execution id>``, then uploaded to their
  final URL ``<root>/<node>/<key>/<execution id>``. An object store has no atomic directory
  rename, so the commit point is the metadata store: the artifacts flip to PUBLISHED only after
  the upload finished, and readers (the launcher's driver, the resolvers) take only published
  artifacts. An upload cut short leaves a directory of an execution that is not COMPLETE; the
  next execution of that node removes it;
- scratch (``temp_dir``) and the resumable ``work_dir`` (the Trainer's checkpoints) stay local:
  a rerun on the same machine resumes, a rerun on another machine starts that node over;
- each node's log is written locally and uploaded to ``<root>/logs/<run>/<node>.log`` when the
  node ends, failed or not.

The staging directory is ``$PIPELINE_STAGING_DIR`` (default: the system temp dir) plus
``pipeline-staging/<pipeline name>-<hash of the root and the metadata URL>``. It is a cache: deleting it between runs
loses nothing.

Example:
    >>> staging = Staging("taxi", "gs://bucket/taxi", "postgresql+psycopg://db/m", base="/tmp/s")
    >>> staging.dir.startswith("/tmp/s/pipeline-staging/taxi-")
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from typing import Any

from components import fileio
from components.artifacts import Artifact
from pipeline.logs import log_path

STAGING_ENV = "PIPELINE_STAGING_DIR"


class Staging:
    """The local staging directory of one pipeline root URL (see the module docstring).

    Args:
        pipeline_name: The pipeline's name (part of the directory name).
        root: The pipeline root URL.
        metadata: The metadata store's URL. Downloads are kept by artifact id, which only that
            store's ids name: another store over the same root gets another staging dir.
        base: Where staging directories go; default ``$PIPELINE_STAGING_DIR`` or the temp dir.
    """

    def __init__(self, pipeline_name: str, root: str, metadata: str, *, base: str | None = None):
        self.root = root
        base = base or os.environ.get(STAGING_ENV) or tempfile.gettempdir()
        digest = hashlib.sha256(f"{root}\n{metadata}".encode()).hexdigest()[:12]
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pipeline_name)
        self.dir = os.path.join(os.path.abspath(base), "pipeline-staging", f"{safe}-{digest}")

    def path(self, *parts: str) -> str:
        """A local path under the staging directory."""
        return os.path.join(self.dir, *parts)

    def output_dir(self, node_id: str, key: str, execution_id: int) -> str:
        """Where an execution writes one output before its upload: the root's layout, under
        ``outputs/`` (so what an executor keeps next to its outputs, such as the Tuner's default
        study file in ``<node>/``, stays per node)."""
        return self.path("outputs", node_id, key, str(execution_id))

    def remove_outputs(self, component: Any, execution_id: int) -> None:
        """Removes an execution's local output dirs (uploaded, or kept as ``failed-<id>``)."""
        for key in component.OUTPUTS:
            shutil.rmtree(self.output_dir(component.id, key, execution_id), ignore_errors=True)

    def localize(self, artifact: Artifact) -> Artifact:
        """A copy of ``artifact`` whose ``uri`` is a local directory holding the same files.

        An artifact already local is returned as it is. The download happens once per artifact
        id (or per URI for an artifact without one) on this machine.
        """
        if not fileio.is_url(artifact.uri):
            return artifact
        name = str(artifact.id) if artifact.id is not None else hashlib.sha256(artifact.uri.encode()).hexdigest()
        target = self.path("artifacts", name)
        if not os.path.isdir(target):
            download(artifact.uri, target)
        return dataclasses.replace(artifact, uri=target, properties=dict(artifact.properties))


def local_log_path(pipeline_name: str, root: str, metadata: str, run_id: int, node_id: str) -> str:
    """Where a node's log is written on the machine that runs it: under the root, or for a URL
    root under the staging dir (it is uploaded to `pipeline.logs.log_path` when the node ends)."""
    if fileio.is_url(root):
        return log_path(Staging(pipeline_name, root, metadata).dir, run_id, node_id)
    return log_path(root, run_id, node_id)


def download(url: str, target: str) -> None:
    """Copies the directory ``url`` to the local directory ``target`` so that ``target`` appears
    complete or not at all (a private copy renamed into place; another process's copy that got
    there first is kept)."""
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if not fileio.isdir(url):
        raise FileNotFoundError(
            f"artifact directory {url} does not exist (it was deleted from the pipeline root after it "
            "was published). How to fix: rerun the node that produced it with caching off, or restore it.")
    private = os.path.join(parent, f".download-{uuid.uuid4().hex}")
    try:
        fileio.copytree(url, private)
        try:
            os.rename(private, target)
        except OSError:
            if not os.path.isdir(target):
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)


def upload(local: str, url: str) -> None:
    """Copies the local directory ``local`` to ``url``, replacing what an earlier, unpublished
    attempt left there."""
    fileio.rmtree(url)
    fileio.copytree(local, url)


def upload_file(local: str, url: str) -> None:
    """Copies one local file to ``url`` (overwriting it)."""
    fileio.makedirs(url.rsplit("/", 1)[0])
    fileio.copy_file(local, url)
