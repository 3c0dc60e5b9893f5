"""The graph drawn for a person (``aclscan graph --format png``), with matplotlib.

A picture of every node is unreadable beyond a few dozen, so a large scan is
drawn condensed: the SIDs with problem verdicts (the most files first), each with
its descriptors merged into one node ("7 descriptors, 36 files"), the folders
where its explicit ACEs sit, the services, rights, groups, mapped and history SIDs
around it, and the authorities with their stale_of links. Columns go from where
a SID is used (folders, descriptors) through the SIDs to what they are (services,
rights, authorities). SIDs are coloured by verdict; every label is escaped
(graph.label_safe) and drawn without mathtext, so a name is shown as it is.

Only this module imports matplotlib, through the Agg canvas (no display, no pyplot
state).
"""

from __future__ import annotations

import warnings
from typing import IO

import networkx as nx

from aclscan import graph as g
from aclscan.classify import VERDICTS, split_domain_relative

FULL_LIMIT = 60  # up to this many nodes (accounts aside) the picture shows all of them
MAX_FOCUS = 20  # SIDs a condensed picture centres on
MAX_NEIGHBOURS = 5  # per SID and edge kind; the rest become one "+N more" node
MAX_FOLDERS = 3  # explicit-ACE folders per SID, those nearest the root first
LABEL_WIDTH = 40  # characters per label line

_COLUMNS = {g.FOLDER: 0, g.DESCRIPTOR: 1, g.SERVICE: 4, g.RIGHT: 4, g.AUTHORITY: 5}
_MARKERS = {g.SID: "o", g.ACCOUNT: "p", g.AUTHORITY: "h", g.DESCRIPTOR: "s", g.SERVICE: "D", g.RIGHT: "^",
            g.FOLDER: "v"}
_DASHED = {g.STALE_OF, g.MAPPED_TO, g.SID_HISTORY}
_EDGE_PRIORITY = (g.WOULD_GO_TO, g.SID_HISTORY, g.STALE_OF, g.MEMBERSHIP, g.RUNS_AS, g.GRANTED_RIGHT, g.EXPLICIT_IN, g.REFERENCES,
                  g.MAPPED_TO, g.BELONGS_TO, g.IDENTIFIES)
_COLUMN_WIDTH = 3.0  # inches
_ROW_HEIGHT = 0.5
_LEGEND_WIDTH = 2.6


def _short_sid(sid: str) -> str:
    """'S-1-5-21-191058668-193157475-1542849698-1003' -> 'S-1-5-21-191058668…-1003'."""
    parts = split_domain_relative(sid)
    if not parts:
        return sid
    first = parts[0].split("-")[4]
    return f"S-1-5-21-{first}…-{parts[1]}"


def _clip(text: str) -> str:
    text = g.label_safe(text)
    return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 1] + "…"


def _picture_label(data: dict) -> str:
    kind = data["kind"]
    lines = [_clip(str(data["label"]))]
    if kind == g.SID:
        if data["label"] != data["sid"]:
            lines.append(_short_sid(data["sid"]))
        else:
            lines = [_short_sid(data["sid"])]
        if data.get("verdict"):
            lines.append(f"{data['verdict']}, {data.get('files', 0)} files")
    elif kind == g.AUTHORITY and data.get("authority_kind"):
        lines = [_clip(str(data.get("name") or data["sid"])), data["authority_kind"].replace("_", " ")]
    return "\n".join(lines)


class _View:
    """The nodes and edges a picture shows, with what the picture needs of each."""

    def __init__(self, graph: nx.MultiDiGraph):
        self.graph = graph
        self.picture = nx.DiGraph()
        self.note = ""

    def add(self, node: str) -> str:
        if node not in self.picture:
            self.picture.add_node(node, **self.graph.nodes[node])
        return node

    def add_synthetic(self, node: str, kind: str, label: str) -> str:
        self.picture.add_node(node, kind=kind, label=label)
        return node

    def link(self, source: str, target: str, kind: str) -> None:
        """One line per pair of nodes, of the kind that says most (sid_history rather than mapped_to)."""
        if not self.picture.has_edge(source, target):
            self.picture.add_edge(source, target, kind=kind)
        elif _EDGE_PRIORITY.index(kind) < _EDGE_PRIORITY.index(self.picture.edges[source, target]["kind"]):
            self.picture.edges[source, target]["kind"] = kind
        if kind == g.WOULD_GO_TO:  # the warning the picture writes on the line
            self.picture.edges[source, target]["label"] = next(
                (d["label"] for d in self.graph.get_edge_data(source, target, default={}).values()
                 if d["kind"] == g.WOULD_GO_TO), "would go to")

    def everything(self) -> None:
        for node, data in self.graph.nodes(data=True):
            if data["kind"] != g.ACCOUNT:  # an account node repeats its SID's label
                self.add(node)
        for source, target, data in self.graph.edges(data=True):
            if source in self.picture and target in self.picture:
                self.link(source, target, data["kind"])

    def condensed(self) -> None:
        focus = g.problem_sids(self.graph)
        total = len(focus)
        what = "problem SIDs"
        if not focus:  # a clean scan: show who the files belong to
            what = "SIDs (no problems found), the most files first"
            nodes = [(d.get("files", 0), d["sid"]) for _, d in self.graph.nodes(data=True) if d["kind"] == g.SID]
            focus = [sid for _, sid in sorted(nodes, key=lambda item: (-item[0], item[1]))]
            total = len(focus)
        focus = focus[:MAX_FOCUS]
        self.note = f"condensed: {len(focus)} of {total} {what}"
        for sid in focus:
            self.around(g.sid_id(sid))
        # What the shown SIDs are: their authorities, services logging on as them, stale_of links.
        for node in [n for n, d in self.picture.nodes(data=True) if d["kind"] == g.SID and n in self.graph]:
            for source, _, data in self.graph.in_edges(node, data=True):
                if data["kind"] == g.RUNS_AS:
                    self.link(self.add(source), node, g.RUNS_AS)
            for _, target, data in self.graph.out_edges(node, data=True):
                if data["kind"] == g.BELONGS_TO:
                    self.link(node, self.add(target), g.BELONGS_TO)
        for source, target, data in self.graph.edges(data=True):
            if data["kind"] == g.STALE_OF and (source in self.picture or target in self.picture):
                self.link(self.add(source), self.add(target), g.STALE_OF)

    def around(self, node: str) -> None:
        """One focus SID with its neighbourhood; descriptors merged, long lists cut."""
        self.add(node)
        sid = self.graph.nodes[node]["sid"]
        descriptors = {s for s, _, d in self.graph.in_edges(node, data=True) if d["kind"] == g.REFERENCES}
        if descriptors:
            files = sum(self.graph.nodes[d].get("files", 0) for d in descriptors)
            merged = self.add_synthetic(f"descriptors-of:{sid}", g.DESCRIPTOR,
                                        f"{len(descriptors)} descriptors, {files} files")
            self.link(merged, node, g.REFERENCES)
        incoming: dict[str, list[str]] = {}
        for source, _, data in self.graph.in_edges(node, data=True):
            if data["kind"] not in (g.REFERENCES, g.IDENTIFIES):
                incoming.setdefault(data["kind"], []).append(source)
        outgoing: dict[str, list[str]] = {}
        for _, target, data in self.graph.out_edges(node, data=True):
            outgoing.setdefault(data["kind"], []).append(target)
        for kind, sources in incoming.items():
            shown, more = self.cut(sources, kind)
            for source in shown:
                self.link(self.add(source), node, kind)
            if more:
                kind_of = self.graph.nodes[sources[0]]["kind"]
                extra = self.add_synthetic(f"more-{kind}-to:{sid}", kind_of, f"+{more} more {kind_of}s")
                self.link(extra, node, kind)
        for kind, targets in outgoing.items():
            shown, more = self.cut(targets, kind)
            for target in shown:
                self.link(node, self.add(target), kind)
            if more:
                kind_of = self.graph.nodes[targets[0]]["kind"]
                extra = self.add_synthetic(f"more-{kind}-from:{sid}", kind_of, f"+{more} more {kind_of}s")
                self.link(node, extra, kind)

    @staticmethod
    def cut(nodes: list[str], kind: str) -> tuple[list[str], int]:
        """The neighbours to draw and how many are left out. Folders nearest the
        root come first: an explicit ACE there is inherited by the deeper ones."""
        nodes = sorted(set(nodes), key=lambda n: (n.count("/"), n) if kind == g.EXPLICIT_IN else (0, n))
        limit = MAX_FOLDERS if kind == g.EXPLICIT_IN else MAX_NEIGHBOURS
        if len(nodes) <= limit:
            return nodes, 0
        return nodes[: limit - 1], len(nodes) - (limit - 1)


def picture_view(graph: nx.MultiDiGraph) -> tuple[nx.DiGraph, str]:
    """The nodes and edges to draw, and a note on what was left out."""
    view = _View(graph)
    if sum(1 for _, d in graph.nodes(data=True) if d["kind"] != g.ACCOUNT) <= FULL_LIMIT:
        view.everything()
    else:
        view.condensed()
    return view.picture, view.note


def _columns(picture: nx.DiGraph) -> dict[str, int]:
    """Folders, descriptors, SIDs used on files, other SIDs, services and rights, authorities."""
    columns = {}
    for node, data in picture.nodes(data=True):
        if data["kind"] == g.SID:
            used = data.get("problem") or any(
                picture.nodes[s]["kind"] in (g.DESCRIPTOR, g.FOLDER) for s in picture.predecessors(node))
            columns[node] = 2 if used else 3
        else:
            columns[node] = _COLUMNS.get(data["kind"], 3)
    return columns


def _verdict_rank(data: dict) -> int:
    verdict = data.get("verdict")
    return VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)


def _layout(picture: nx.DiGraph, columns: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Columns left to right; the SID column ordered problems first, every other
    column by the mean height of its neighbours already placed (fewer crossings)."""
    used = sorted(set(columns.values()))
    x_of = {column: i * _COLUMN_WIDTH for i, column in enumerate(used)}
    rows: dict[int, list[str]] = {}
    for node, column in columns.items():
        rows.setdefault(column, []).append(node)
    height = max(len(nodes) for nodes in rows.values()) if rows else 1
    undirected = picture.to_undirected(as_view=True)
    y: dict[str, float] = {}
    order = sorted(used, key=lambda c: (c != 2, abs(c - 2), c))
    for column in order:
        nodes = rows[column]
        if column == 2:
            nodes.sort(key=lambda n: (not picture.nodes[n].get("problem"), _verdict_rank(picture.nodes[n]),
                                      -picture.nodes[n].get("files", 0), str(picture.nodes[n]["label"])))
        else:
            def centre(node: str) -> float:
                placed = [y[m] for m in undirected.neighbors(node) if m in y]
                return -sum(placed) / len(placed) if placed else float("inf")

            nodes.sort(key=lambda n: (centre(n), str(picture.nodes[n]["label"])))
        top = (height - len(nodes)) / 2
        for i, node in enumerate(nodes):
            y[node] = -(top + i) * _ROW_HEIGHT
    return {node: (x_of[columns[node]], y[node]) for node in picture.nodes}


def draw_png(graph: nx.MultiDiGraph, out: IO[bytes], title: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a glyph the font lacks is drawn as a box, not a warning per name
        draw_figure(graph, title).savefig(out, format="png", dpi=110)


def draw_figure(graph: nx.MultiDiGraph, title: str):
    """The picture as a matplotlib Figure (on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    picture, note = picture_view(graph)
    columns = _columns(picture)
    positions = _layout(picture, columns) if picture else {}
    column_count = len(set(columns.values())) or 1
    row_count = max((sum(1 for c in columns.values() if c == column) for column in set(columns.values())),
                    default=1)
    verdicts = [v for v in VERDICTS if any(d.get("verdict") == v for _, d in picture.nodes(data=True))]
    kinds = [k for k in g.NODE_KINDS if k != g.SID and any(d["kind"] == k for _, d in picture.nodes(data=True))]
    if any(d["kind"] == g.SID and not d.get("verdict") for _, d in picture.nodes(data=True)):
        kinds.insert(0, g.SID)  # its legend entry: the colour of a SID the scan did not classify
    edge_kinds = [k for k in g.EDGE_KINDS if any(d["kind"] == k for _, _, d in picture.edges(data=True))]
    plot_width = column_count * _COLUMN_WIDTH
    legend_height = 0.2 * (len(verdicts) + len(kinds) + len(edge_kinds))
    plot_height = max(4.0, row_count * _ROW_HEIGHT + 0.8, legend_height)
    width, height = plot_width + _LEGEND_WIDTH, plot_height + 0.9

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.02, 0.02, plot_width / width - 0.02, plot_height / height - 0.02))
    axes.set_axis_off()
    axes.set_xlim(-0.4, plot_width - 0.4)
    axes.set_ylim(-(row_count - 1) * _ROW_HEIGHT - 0.5, 0.5)
    heading = g.label_safe(title) + (f"\n{g.label_safe(note)}" if note else "")
    figure.suptitle(heading, fontsize=11, parse_math=False, x=0.02, ha="left")

    for source, target, data in picture.edges(data=True):
        # Bend edges within a column, and those that jump a column (they would run through its nodes).
        span = abs(positions[source][0] - positions[target][0]) / _COLUMN_WIDTH
        bend = 0.35 if span < 0.5 else 0.12 if span > 1.5 else 0.0
        axes.annotate(
            "", xy=positions[target], xytext=positions[source],
            arrowprops=dict(arrowstyle="-|>", color=g.EDGE_COLOURS[data["kind"]], lw=0.9,
                            linestyle="--" if data["kind"] in _DASHED else "-", shrinkA=5, shrinkB=5,
                            connectionstyle=f"arc3,rad={bend}"),
            zorder=1)
        if data["kind"] == g.WOULD_GO_TO:  # a RID collision: say on the line whom a rewrite would favour
            (x1, y1), (x2, y2) = positions[source], positions[target]
            # three quarters of the way, clear of the source's own label
            axes.text(x1 + 0.7 * (x2 - x1), y1 + 0.7 * (y2 - y1) + 0.06, g.label_safe(data.get("label", "would go to")),
                      fontsize=7.5, color=g.EDGE_COLOURS[g.WOULD_GO_TO], fontweight="bold", ha="center",
                      va="bottom", parse_math=False, zorder=4,
                      bbox=dict(boxstyle="round,pad=0.15", facecolor="white", alpha=0.9, edgecolor="none"))
    for kind, marker in _MARKERS.items():
        nodes = [n for n, d in picture.nodes(data=True) if d["kind"] == kind]
        if nodes:
            axes.scatter([positions[n][0] for n in nodes], [positions[n][1] for n in nodes], marker=marker,
                         s=90, c=[g.node_colour(picture.nodes[n]) for n in nodes], edgecolors="#333333",
                         linewidths=0.8, zorder=2)
    for node, data in picture.nodes(data=True):
        x, y = positions[node]
        axes.text(x + 0.13, y, _picture_label(data), fontsize=8, va="center", ha="left", parse_math=False,
                  zorder=3, clip_on=False,
                  bbox=dict(boxstyle="square,pad=0.1", facecolor="white", alpha=0.75, edgecolor="none"))

    handles = (
        [Line2D([], [], marker="o", linestyle="", markerfacecolor=g.VERDICT_COLOURS[v], markeredgecolor="#333333",
                label=v.replace("_", " ")) for v in verdicts]
        + [Line2D([], [], marker=_MARKERS[k], linestyle="", markeredgecolor="#333333",
                  markerfacecolor=g.UNCLASSIFIED_COLOUR if k == g.SID else g.KIND_COLOURS[k],
                  label=k if k != g.SID else "not classified") for k in kinds]
        + [Line2D([], [], color=g.EDGE_COLOURS[k], linestyle="--" if k in _DASHED else "-",
                  label=k.replace("_", " ")) for k in edge_kinds]
    )
    if handles:
        figure.legend(handles=handles, loc="upper right", fontsize=8, frameon=False,
                      bbox_to_anchor=(1.0, 1 - 0.9 / height))
    return figure
