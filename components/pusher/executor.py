"""Pusher's executor: check the blessings, copy atomically, keep the newest N versions."""

from __future__ import annotations

import os
import shutil
import time

from components.base import ExecutionContext
from components.trainer.model_paths import serving_model_path

TEMP_PREFIX = ".tmp-"


def existing_versions(model_dir: str) -> list[int]:
    """The integer version directories under ``model_dir``, ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir)
                  if name.isdigit() and os.path.isdir(os.path.join(model_dir, name)))


def next_version(existing: list[int], policy: str, *, now: float | None = None) -> int:
    """A version greater than every existing one: the timestamp, or the last one + 1."""
    last = existing[-1] if existing else 0
    if policy == "increment":
        return last + 1
    return max(int(time.time() if now is None else now), last + 1)


def why_not_blessed(ctx: ExecutionContext) -> str | None:
    """None when every given blessing is blessed, else the reason to skip the push."""
    for key in ("model_blessing", "infra_blessing"):
        for blessing in ctx.inputs.get(key) or []:
            if not blessing.properties.get("blessed"):
                reason = blessing.properties.get("reason", "no reason recorded")
                return f"{key} {blessing.id} is not blessed: {reason}"
    return None


def push(source: str, model_dir: str, version: int) -> str:
    """Copies ``source`` to ``model_dir/<version>`` through a temporary sibling and a rename."""
    os.makedirs(model_dir, exist_ok=True)
    final = os.path.join(model_dir, str(version))
    temp = os.path.join(model_dir, f"{TEMP_PREFIX}{version}")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        shutil.copytree(source, temp)
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final


def run(ctx: ExecutionContext) -> None:
    params = ctx.parameters
    out = ctx.outputs["pushed_model"]
    model = ctx.input("model")
    model_dir = os.path.abspath(os.path.join(params.push_destination, params.model_name))
    reason = why_not_blessed(ctx)
    if reason is not None:
        ctx.report(f"not pushed: {reason}")
        out.properties.update(pushed=False, reason=reason, model_id=model.id)
        return
    version = next_version(existing_versions(model_dir), params.version_policy)
    final = push(serving_model_path(model), model_dir, version)
    removed = []
    for old in existing_versions(model_dir)[:-params.versions_to_keep]:
        shutil.rmtree(os.path.join(model_dir, str(old)))
        removed.append(old)
    ctx.report(f"pushed version {version} to {final}")
    out.properties.update(pushed=True, version=version, pushed_destination=final,
                          removed_versions=removed, model_id=model.id)
