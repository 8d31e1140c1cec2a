"""The run report's sections about the run itself: the DAG, and the pushed version's lineage."""

from __future__ import annotations

import os
from typing import Any

from pipeline import metadata as md
from pipeline import report_charts as charts
from pipeline.report import NOT_IN_RUN, Node, RunView, cached_note, nodes_or_note
from pipeline.report_html import Html, chart, code, heading, join, link, note, table


def _layers(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the longest path to it from a node without inputs."""
    layer = {n: 0 for n in names}
    for _ in range(len(names)):  # longest paths settle within n rounds; a cycle just stops here
        changed = False
        for source, target in edges:
            if layer[target] < layer[source] + 1:
                layer[target] = layer[source] + 1
                changed = True
        if not changed:
            break
    return layer


def _positions(names: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    layer = _layers(names, edges)
    rows: dict[int, int] = {}
    placed = {}
    for name in names:
        row = rows.get(layer[name], 0)
        rows[layer[name]] = row + 1
        placed[name] = (layer[name], row)
    return placed


def dag_chart(nodes: list[Node]) -> Any:
    names = [n.id for n in nodes]
    edges = [(p, n.id, kind) for n in nodes for p, kind in n.producers if p in names and p != n.id]
    where = _positions(names, [(a, b) for a, b, _ in edges])
    node_rows = [{"label": n.id, "state": n.state, "layer": where[n.id][0], "row": where[n.id][1]} for n in nodes]
    edge_rows = [{"x": where[a][0], "y": where[a][1], "x2": where[b][0], "y2": where[b][1], "kind": kind}
                 for a, b, kind in edges]
    return charts.graph(node_rows, edge_rows, color="state", colors=charts.STATE_COLORS,
                        title="The DAG (dashed: input from an earlier run)")


def _seconds(execution: dict) -> float | None:
    if execution.get("finished") is None:
        return None
    return (execution["finished"] - execution["started"]).total_seconds()


def timeline_chart(view: RunView) -> Any:
    start = view.run["started"]
    ran = [n for n in view.nodes if n.execution]
    ends = [(n.execution.get("finished") or n.execution["started"]) for n in ran]
    span = max([(e - start).total_seconds() for e in ends] + [1.0])
    rows = []
    for node, end in zip(ran, ends):
        begin = (node.execution["started"] - start).total_seconds()
        finish = (end - start).total_seconds()
        rows.append({"node": node.id, "state": node.state, "start": begin,
                     "end": max(finish, begin + span / 250), "seconds": finish - begin})
    return charts.timeline(rows)


def dag_section(view: RunView) -> Html:
    rows, classes = [], []
    for node in view.nodes:
        execution = node.execution or {}
        seconds = _seconds(execution) if execution else None
        if node.state == md.CACHED:
            cache = f"yes (execution {execution.get('cached_from')})"
        elif node.type.endswith("Resolver") and execution:
            cache = "never (a query)"
        else:
            cache = "no" if execution else ""
        outputs = ", ".join(f"{k}=#{a.id}" for k, arts in node.outputs.items() for a in arts)
        href = view.log_href(node.id) if execution else None
        error = (execution.get("error") or "").strip().splitlines()
        rows.append([node.id, node.type, Html(f'<span class="state {node.state}">{node.state}</span>'),
                     str(execution.get("started", ""))[11:19],
                     round(seconds, 2) if seconds is not None else "", cache, outputs,
                     link(href, "log") if href else "", error[0] if error else ""])
        classes.append("bad" if node.state == md.FAILED else "muted" if node.state == NOT_IN_RUN else "")
    body = [chart(charts.svg(dag_chart(view.nodes))), chart(charts.svg(timeline_chart(view))),
            table(["node", "type", "state", "started (UTC)", "seconds", "cache hit", "outputs", "log", "error"],
                  rows, row_classes=classes)]
    if view.root and not any(view.log_href(n.id) for n in view.nodes):
        body.append(note(f"No log files under {os.path.join(view.root, 'logs', str(view.run_id))}.", "info"))
    return join(body)


# Push and lineage -----------------------------------------------------------------------------

def _walk(tree: dict, depth: int, found: dict, edges: set, files: dict) -> None:
    art = tree["artifact"]
    entry = found.setdefault(art.id, {"artifact": art, "execution": tree["execution"], "depth": depth})
    entry["depth"] = max(entry["depth"], depth)
    if art.TYPE_NAME == "Examples" and not tree["inputs"]:
        for path in art.properties.get("files") or []:
            files[path] = max(files.get(path, 0), depth + 1)
            edges.add((f"file:{path}", art.id))
    for _, child in tree["inputs"]:
        edges.add((child["artifact"].id, art.id))
        _walk(child, depth + 1, found, edges, files)


def lineage_chart(found: dict, edges: set, files: dict) -> Any:
    deepest = max([e["depth"] for e in found.values()] + list(files.values()) + [0])
    places: dict[Any, tuple[int, int]] = {}
    rows: dict[int, int] = {}
    nodes = []

    def place(key: Any, depth: int, label: str, kind: str) -> None:
        layer = deepest - depth
        row = rows.get(layer, 0)
        rows[layer] = row + 1
        places[key] = (layer, row)
        nodes.append({"label": label, "kind": kind, "layer": layer, "row": row})

    for path, depth in sorted(files.items()):
        place(f"file:{path}", depth, os.path.basename(path), "input file")
    for art_id, entry in sorted(found.items(), key=lambda kv: (-kv[1]["depth"], kv[0])):
        art = entry["artifact"]
        kind = "pushed version" if art.TYPE_NAME == "PushedModel" else "artifact"
        place(art_id, entry["depth"], f"{art.TYPE_NAME} #{art_id}", kind)
    edge_rows = [{"x": places[a][0], "y": places[a][1], "x2": places[b][0], "y2": places[b][1], "kind": "run"}
                 for a, b in edges if a in places and b in places]
    colors = {"input file": "#6d4c41", "artifact": "#546e7a", "pushed version": "#2e7d32"}
    return charts.graph(nodes, edge_rows, color="kind", colors=colors, title="Lineage, from the input files")


def push_section(view: RunView) -> Html:
    pushers, notes = nodes_or_note(view, ("Pusher",), "push")
    body = [notes]
    for node in pushers:
        pushed = node.output("pushed_model")
        if pushed is None:
            body.append(note(f"{node.id} recorded no pushed_model output.", "warn"))
            continue
        props = pushed.properties
        body.append(heading(node.id))
        body.append(cached_note(node))
        if props.get("pushed"):
            body.append(note(f"Pushed version {props.get('version')} of model #{props.get('model_id')} to "
                             f"{props.get('pushed_destination')}"
                             + (" (an earlier attempt had already copied it)" if props.get("reused") else ""), "ok"))
        else:
            body.append(note(f"Not pushed: {props.get('reason', 'no reason recorded')}", "warn"))
        if props.get("removed_versions"):
            body.append(note(f"Older versions removed: {props['removed_versions']}", "info"))
        found: dict = {}
        edges: set = set()
        files: dict = {}
        _walk(view.store.lineage(pushed.id), 0, found, edges, files)
        body.append(chart(charts.svg(lineage_chart(found, edges, files))))
        rows = []
        for art_id, entry in sorted(found.items(), key=lambda kv: (-kv[1]["depth"], kv[0])):
            art, execution = entry["artifact"], entry["execution"]
            made = f"{execution['component']} (execution {execution['id']}, run {execution['run_id']})" \
                if execution else ""
            rows.append([f"#{art_id}", art.TYPE_NAME, made, code(art.properties.get("_uri", art.uri))])
        for path in sorted(files):
            rows.insert(0, ["input", "file", "", code(path)])
        body.append(table(["artifact", "type", "made by", "where"], rows))
    return join(body)
