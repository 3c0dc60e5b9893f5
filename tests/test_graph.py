"""aclscan.graph and `aclscan graph`: the graph of real scans, its impact answers,
and every format read back by an independent reader (networkx's readers, json,
graphviz's dot, the PNG header) - hostile names included."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import struct
import subprocess

import networkx as nx
import pytest

from aclscan import graph as g
from aclscan import store
from aclscan.classify import PROBLEMS
from aclscan.cli import main
from aclscan.errors import DatabaseError, NotFound
from tests import scenarios

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _edges(graph, source, target, kind):
    return [d for d in graph.get_edge_data(source, target, default={}).values() if d["kind"] == kind]


def _sid_named(facts: dict, name: str) -> str:
    return next(a["sid"] for a in facts["accounts"] if a["name"] == name)


def _finding(db_path, sid: str) -> dict:
    conn = sqlite3.connect(db_path)
    try:
        cursor = conn.execute("SELECT * FROM findings WHERE sid = ?", (sid,))
        names = [c[0] for c in cursor.description]
        return dict(zip(names, cursor.fetchone()))
    finally:
        conn.close()


# --------------------------------------------------------------------------- av-service


@pytest.fixture(scope="module")
def av(scenario_db):
    path = scenario_db("av-service")
    facts = scenarios.manifest("av-service")
    today = _sid_named(facts, "AVService")
    old = next(sid for sid, e in facts["expected"].items() if e.get("mapped_sid") == today)
    return path, facts, g.build_graph(path), old, today


def test_old_service_sid_is_stale_with_its_right_group_and_mapping(av):
    path, facts, graph, old, today = av
    node = graph.nodes[g.sid_id(old)]
    assert node["kind"] == g.SID and node["verdict"] == "stale_prefix" and node["problem"] is True
    assert facts["lsa_rights"][old]
    for right in facts["lsa_rights"][old]:
        assert _edges(graph, g.sid_id(old), g.right_id(right), g.GRANTED_RIGHT)
    assert "SeServiceLogonRight" in facts["lsa_rights"][old]
    av_admins = _sid_named(facts, "AV Admins")
    membership = _edges(graph, g.sid_id(old), g.sid_id(av_admins), g.MEMBERSHIP)
    assert len(membership) == 1  # the SAM alias and the accounts table say it once between them
    assert _edges(graph, g.sid_id(old), g.sid_id(today), g.MAPPED_TO)


def test_service_runs_as_todays_sid(av):
    path, facts, graph, old, today = av
    logon = next(s for s in facts["services"] if s["name"] == "AVScan")["object_name"]
    assert logon.endswith("AVService")
    assert _edges(graph, g.service_id("AVScan"), g.sid_id(today), g.RUNS_AS)
    assert not _edges(graph, g.service_id("AVScan"), g.sid_id(old), g.RUNS_AS)
    assert graph.nodes[g.service_id("AVScan")]["object_name"] == logon


def test_previous_machine_is_stale_of_the_current_one(av):
    path, facts, graph, old, today = av
    previous, = facts["previous_machine_sids"]
    assert _edges(graph, g.authority_id(previous), g.authority_id(facts["machine_sid"]), g.STALE_OF)
    assert graph.nodes[g.authority_id(facts["machine_sid"])]["authority_kind"] == "machine"
    assert _edges(graph, g.sid_id(old), g.authority_id(previous), g.BELONGS_TO)
    assert _edges(graph, g.sid_id(today), g.authority_id(facts["machine_sid"]), g.BELONGS_TO)


def test_one_node_per_distinct_descriptor(av):
    path, facts, graph, old, today = av
    conn = sqlite3.connect(path)
    keys = {k for (k,) in conn.execute("SELECT key FROM descriptors")}
    files = conn.execute("SELECT COUNT(*) FROM file_records WHERE descriptor_key IS NOT NULL").fetchone()[0]
    conn.close()
    nodes = [d for _, d in graph.nodes(data=True) if d["kind"] == g.DESCRIPTOR]
    assert keys and {d["descriptor_key"] for d in nodes} == keys
    assert len(nodes) < files
    assert sum(d["files"] for d in nodes) == files


def test_impact_of_the_old_service_sid(av):
    path, facts, graph, old, today = av
    result = g.impact(graph, old)
    finding = _finding(path, old)
    assert (result.files, result.descriptors) == (finding["files"], finding["descriptors"])
    assert (result.files, result.descriptors) == (facts["expected"][old]["files"], facts["expected"][old]["descriptors"])
    assert result.verdict == "stale_prefix" and result.mapped_sid == today
    assert result.lsa_rights == tuple(sorted(facts["lsa_rights"][old]))
    assert result.groups == (_sid_named(facts, "AV Admins"),)
    assert result.services == () and result.mapped_services == ("AVScan",)
    # The folders, independently: directories (through the files view) whose descriptor
    # has a non-inherited ACE for the SID.
    conn = sqlite3.connect(path)
    expected = sorted(p for (p,) in conn.execute(
        "SELECT DISTINCT f.path FROM files f JOIN aces a ON a.descriptor_key = f.descriptor_key"
        " WHERE f.is_dir = 1 AND a.sid = ? AND a.inherited = 0", (old,)))
    conn.close()
    assert result.folders == tuple(expected)
    assert set(expected) == {"/Program Files/AVScan", "/ProgramData/AVScan"}
    for folder in expected:  # and the manifest wrote an explicit (no ID flag) ACE for it there
        sddl = facts["paths"][folder.lstrip("/")]
        aces = re.findall(r"\(([^)]*)\)", sddl)
        assert any(a.endswith(f";{old}") and "ID" not in a.split(";")[1] for a in aces)


def test_explicit_folders_name_only_problem_sids(av):
    path, facts, graph, old, today = av
    folder_sids = {graph.nodes[t]["sid"] for s, t, d in graph.edges(data=True) if d["kind"] == g.EXPLICIT_IN}
    assert folder_sids and all(graph.nodes[g.sid_id(s)]["verdict"] in PROBLEMS for s in folder_sids)


def test_impact_of_an_unknown_sid_is_not_found(av):
    with pytest.raises(NotFound) as caught:
        g.impact(av[2], "S-1-5-21-1-2-3-4")
    assert isinstance(caught.value, KeyError)


def test_references_carry_role_rights_and_inheritance(av):
    path, facts, graph, old, today = av
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT descriptor_key, mask, inherited, sddl FROM aces WHERE sid = ? AND acl = 'dacl'",
                        (old,)).fetchall()
    conn.close()
    assert rows
    for key, mask, inherited, sddl in rows:
        edges = [d for d in _edges(graph, g.descriptor_id(key), g.sid_id(old), g.REFERENCES) if d["role"] == "dacl"]
        assert any(d["mask"] == mask and d["inherited"] is bool(inherited) and d["rights"] == sddl.split(";")[2]
                   for d in edges)


# --------------------------------------------------------------------------- other scenarios


def test_rid_collision_has_no_mapping(scenario_db):
    facts = scenarios.manifest("member-after")
    graph = g.build_graph(scenario_db("member-after"))
    ken = next(s for s, e in facts["expected"].items() if e.get("account") == "Ken")
    assert graph.nodes[g.sid_id(ken)]["verdict"] == "rid_collision"
    assert not [d for _, _, d in graph.out_edges(g.sid_id(ken), data=True) if d["kind"] == g.MAPPED_TO]
    # while the built-in 500 is mapped RID to RID
    admin = next(s for s, e in facts["expected"].items() if e["verdict"] == "stale_prefix" and s.endswith("-500"))
    assert _edges(graph, g.sid_id(admin), g.sid_id(facts["expected"][admin]["mapped_sid"]), g.MAPPED_TO)


def test_rid_collision_would_go_to_the_rid_holder(scenario_db, tmp_path):
    """member-after: Ken's, Arianne's and Ron's old RIDs belong to Jon, Sam and Stephanie now (the
    manifest's accounts): each old SID has an edge to today's holder, drawn in the picture."""
    from matplotlib.text import Text

    from aclscan.graph_picture import draw_figure, picture_view

    facts = scenarios.manifest("member-after")
    holders = {a["rid"]: (a["sid"], a["name"]) for a in facts["accounts"]}
    collisions = {s: e for s, e in facts["expected"].items() if e["verdict"] == "rid_collision"}
    assert len(collisions) == 3
    graph = g.build_graph(scenario_db("member-after"))
    expected = set()
    for sid in collisions:
        holder_sid, name = holders[int(sid.rsplit("-", 1)[1])]
        edges = _edges(graph, g.sid_id(sid), g.sid_id(holder_sid), g.WOULD_GO_TO)
        assert len(edges) == 1 and edges[0]["label"] == f"would go to MEMBER\\{name}"
        expected.add(f"would go to MEMBER\\{name}")
    assert {name for _, (_, name) in holders.items()} >= {"Jon", "Sam", "Stephanie"}
    # only collisions get one: the stale Administrator maps by RID on purpose
    kinds = {graph.nodes[s]["verdict"] for s, _, d in graph.edges(data=True) if d["kind"] == g.WOULD_GO_TO}
    assert kinds == {"rid_collision"}
    picture, _ = picture_view(graph)
    drawn = [(s, t) for s, t, d in picture.edges(data=True) if d["kind"] == g.WOULD_GO_TO]
    assert len(drawn) == 3
    texts = {t.get_text() for t in draw_figure(graph, "member-after").findobj(Text)}
    assert expected <= texts
    assert "would go to" in texts  # in the legend
    out = tmp_path / "member-after.png"
    assert main(["graph", str(scenario_db("member-after")), "--format", "png", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_sid_history_edge(scenario_db):
    facts = scenarios.manifest("domain-member")
    graph = g.build_graph(scenario_db("domain-member"))
    old, expected = next((s, e) for s, e in facts["expected"].items() if e["verdict"] == "sid_history")
    dave = expected["mapped_sid"]
    assert _edges(graph, g.sid_id(old), g.sid_id(dave), g.SID_HISTORY)
    assert graph.nodes[g.sid_id(dave)]["label"] == expected["account"]
    assert g.impact(graph, old).history_of == (dave,)


# --------------------------------------------------------------------------- formats


def test_every_format_has_a_writer():
    assert set(g.WRITERS) == set(g.GraphFormat)
    assert [f for f in g.GraphFormat if f.is_binary] == [g.GraphFormat.PNG]


def _same_graph(original, read):
    assert original.nodes and set(read.nodes) == {g.xml_safe(n) for n in original.nodes}
    assert read.number_of_edges() == original.number_of_edges()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _check_dot(text: str) -> None:
    """A small DOT reader of our own: statements of generated names and quoted
    strings; no raw control character inside any string."""
    token = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*|\d+)|(->|[{}\[\]=,;]))', re.S)
    position, depth, strings = 0, 0, []
    while position < len(text.rstrip()):
        match = token.match(text, position)
        assert match, f"DOT does not tokenise at {text[position:position + 40]!r}"
        if match.group(1) is not None:
            strings.append(match.group(1))
        depth += {"{": 1, "}": -1}.get(match.group(3), 0)
        position = match.end()
    assert depth == 0 and text.startswith("digraph")
    assert strings and not any(CONTROL.search(s) for s in strings)
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=text.encode(), capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b"<svg" in done.stdout


def _check_formats(graph) -> None:
    graphml = g.render(graph, "graphml")
    _same_graph(graph, nx.read_graphml(io.BytesIO(graphml), force_multigraph=True))
    gexf = g.render(graph, "gexf")
    _same_graph(graph, nx.read_gexf(io.BytesIO(gexf)))
    document = json.loads(g.render(graph, "json"))
    assert document["graph_format"] == 1
    back = nx.node_link_graph(document)
    assert set(back.nodes) == set(graph.nodes) and back.number_of_edges() == graph.number_of_edges()
    assert graph.nodes and all(back.nodes[n] == graph.nodes[n] for n in graph.nodes)
    _check_dot(g.render(graph, "dot").decode("utf-8"))
    width, height = _png_size(g.render(graph, "png"))
    assert 400 <= width <= 20000 and 300 <= height <= 20000


@pytest.mark.parametrize("name", ["av-service", "member-after", "domain-member"])
def test_formats_read_back(scenario_db, name):
    graph = g.build_graph(scenario_db(name))
    _check_formats(graph)


def test_attributes_survive_graphml(av):
    path, facts, graph, old, today = av
    read = nx.read_graphml(io.BytesIO(g.render(graph, "graphml")), force_multigraph=True)
    assert read.nodes[g.sid_id(old)] == graph.nodes[g.sid_id(old)]
    sddl = graph.nodes[g.descriptor_id(8)]["sddl"]
    assert read.nodes[g.descriptor_id(8)]["sddl"] == sddl


# --------------------------------------------------------------------------- hostile names

HOSTILE = 'Eve"\n<script>alert(1)</script>\x1b[31m=cmd|\' /C calc\'!A0 $x^2$\\'
OLD = "S-1-5-21-1-2-3-1001"
GONE = "S-1-5-21-1-2-3-1002"
NEW = "S-1-5-21-4-5-6-1001"


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory):
    """A scan database written by hand, every name in it hostile."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    db = store.new_database(path)
    conn = db.conn
    conn.execute("INSERT INTO volumes (id, image, label) VALUES (1, ?, ?)", (f"/tmp/{HOSTILE}.img", HOSTILE))
    findings = [(OLD, "stale_prefix", "high", HOSTILE, NEW, 3, 1), (GONE, "orphan", "high", None, None, 3, 1),
                (NEW, "resolved", "high", f"WS\x1b[31m1\\{HOSTILE}", None, 0, 0)]
    conn.executemany("INSERT INTO findings (sid, verdict, confidence, account, mapped_sid, files, descriptors,"
                     " evidence) VALUES (?, ?, ?, ?, ?, ?, ?, '[]')", findings)
    conn.executemany("INSERT INTO accounts (sid, name, domain, kind, source, sid_history, members, rights, disabled)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, '[]', 0)",
                     [(NEW, HOSTILE, f"WS\x1b[31m1", "user", HOSTILE, "[]", "[]"),
                      ("S-1-5-21-4-5-6-1009", f"<b>{HOSTILE}", "WS1", "alias", "SAM", "[]", json.dumps([OLD]))])
    conn.executemany("INSERT INTO authorities (sid, name, kind, complete, source) VALUES (?, ?, ?, ?, ?)",
                     [("S-1-5-21-4-5-6", f"WS\x1b[31m1\"", "machine", 1, HOSTILE),
                      ("S-1-5-21-1-2-3", None, "previous_machine", 0, HOSTILE)])
    conn.executemany("INSERT INTO hive_references (sid, kind, detail) VALUES (?, ?, ?)",
                     [(NEW, "service_logon", f"{HOSTILE} logs on as .\\{HOSTILE}"),
                      (OLD, "lsa_right", "SeServiceLogonRight"), (OLD, "alias_member", f"<b>{HOSTILE}")])
    sddl = f"O:{OLD}G:SYD:P(A;OICI;FA;;;{OLD})(A;OICI;FA;;;{GONE})"
    conn.execute('INSERT INTO descriptors (key, volume_id, security_id, source, sddl, owner, "group", files)'
                 " VALUES (1, 1, 256, 'sds', ?, ?, 'S-1-5-18', 3)", (sddl, OLD))
    conn.executemany("INSERT INTO aces (descriptor_key, acl, position, type, flags, mask, sid, inherited, sddl)"
                     " VALUES (1, 'dacl', ?, 'ACCESS_ALLOWED', 3, 2032127, ?, 0, ?)",
                     [(0, OLD, f"(A;OICI;FA;;;{OLD})"), (1, GONE, f"(A;OICI;FA;;;{GONE})")])
    folder = f"/Users/{HOSTILE}"
    conn.executemany("INSERT INTO directories (volume_id, entry, sequence, path) VALUES (1, ?, ?, ?)",
                     [(5, 5, "/"), (64, 1, folder)])
    conn.executemany("INSERT INTO file_records (volume_id, entry, sequence, parent_entry, parent_sequence, name,"
                     " is_dir, links, security_id, descriptor_key) VALUES (1, ?, 1, ?, ?, ?, ?, 1, 256, 1)",
                     [(64, 5, 5, HOSTILE, 1), (65, 64, 1, f"{HOSTILE}.txt", 0), (66, 64, 1, "b.txt", 0)])
    conn.commit()
    conn.close()
    return path


def test_hostile_graph_holds_the_names_as_they_are(hostile_db):
    graph = g.build_graph(hostile_db)
    assert graph.nodes[g.sid_id(OLD)]["label"] == HOSTILE
    assert g.impact(graph, OLD).folders == (f"/Users/{HOSTILE}",)
    assert g.impact(graph, OLD).services == () and g.impact(graph, NEW).services == (HOSTILE,)
    assert g.impact(graph, OLD).groups == ("S-1-5-21-4-5-6-1009",)


def test_hostile_names_keep_every_format_well_formed(hostile_db):
    graph = g.build_graph(hostile_db)
    _check_formats(graph)
    read = nx.read_graphml(io.BytesIO(g.render(graph, "graphml")), force_multigraph=True)
    assert read.nodes[g.sid_id(OLD)]["label"] == g.xml_safe(HOSTILE)
    assert "\\x1b[31m" in g.xml_safe(HOSTILE) and "\x1b" not in g.xml_safe(HOSTILE)
    dot = g.render(graph, "dot").decode()
    assert "<script>" in dot and "\x1b" not in dot  # shown as text, inside quotes, never raw
    assert re.search(r'label="Eve\\"\\\\x0a<script>', dot)


def test_hostile_png_labels_have_no_control_characters(hostile_db):
    from matplotlib.text import Text

    from aclscan.graph_picture import draw_figure

    graph = g.build_graph(hostile_db)
    figure = draw_figure(graph, "title " + HOSTILE)
    texts = [t.get_text() for t in figure.findobj(Text) if t.get_text()]
    shown = "\n".join(texts)
    assert "<script>" in shown  # the name is there, visibly
    assert texts
    for text in texts:
        for line in text.split("\n"):  # the picture's own line breaks are the only ones
            assert not CONTROL.search(line), repr(line)
    named = [t for t in figure.findobj(Text) if "$x^2$" in t.get_text()]
    assert named and not any(t.get_parse_math() for t in named)  # drawn as written, not as mathtext


def test_label_safe_escapes_controls_bidi_and_surrogates():
    assert g.label_safe("a\x1b[31m\u202eb\ud800\n") == "a\\x1b[31m\\u202eb\\ud800\\x0a"
    assert g.xml_safe("a\x1b\tb\ud800\ufffe") == "a\\x1b\tb\\ud800\\ufffe"


# --------------------------------------------------------------------------- the command


def test_command_writes_each_format(scenario_db, tmp_path, capfd):
    db = scenario_db("av-service")
    assert main(["graph", str(db), "--format", "json"]) == 0
    out, err = capfd.readouterr()
    document = json.loads(out)
    assert document["graph_format"] == 1
    assert f"{len(document['nodes'])} nodes, {len(document['edges'])} edges" in err
    picture = tmp_path / "av.png"
    assert main(["graph", str(db), "--format", "png", "-o", str(picture)]) == 0
    assert _png_size(picture.read_bytes())[0] > 400
    assert str(picture) in capfd.readouterr().err


def test_command_exit_codes(tmp_path, scenario_db, capfd):
    assert main(["graph", str(tmp_path / "missing.db")]) == 5
    assert "Error: no scan database" in capfd.readouterr().err
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    assert main(["graph", str(foreign), "--format", "dot"]) == DatabaseError.exit_code
    assert main(["graph", str(scenario_db("av-service")), "--format", "png"]) == 2
    assert "-o" in capfd.readouterr().err
    assert not list(tmp_path.glob("*.png"))
