"""The scan as a graph: who is named where, who belongs to whom, what runs as whom.

:func:`build_graph` reads a scan database into a networkx ``MultiDiGraph``
(distinct before many: one node per distinct descriptor, never per file; file
counts are attributes). :func:`impact` answers, for one SID, what a fix touches.
:func:`write_graph` renders the graph as GraphML, GEXF, JSON, DOT or a PNG picture.

Node ids are typed strings::

    sid:S-1-5-21-...            a SID (every finding, account, member and group)
    account:SID@SOURCE          an account as one source knows it
    authority:S-1-5-21-a-b-c    a machine or domain prefix
    descriptor:KEY              a distinct security descriptor (descriptors.key)
    service:NAME                a service, from its logon account
    right:SeServiceLogonRight   an LSA account right or privilege
    folder:/PATH                a directory whose own descriptor has an explicit
                                (non-inherited) ACE naming a problem SID; with
                                several volumes, folder:VOLUME:/PATH

Every node has ``kind`` (sid, account, authority, descriptor, service, right,
folder) and ``label`` (what a person reads: ``WS1\\Eric`` rather than a bare SID);
every edge has ``kind``:

    references      descriptor -> sid   role owner/group/dacl/sacl; for ACEs the
                                        ace_type, ace_flags, rights (SDDL), mask,
                                        inherited and count (identical ACEs merged)
    membership      member sid -> group sid   (accounts.members, SAM alias members)
    runs_as         service -> sid      the service's logon account
    granted_right   sid -> right        LSA rights and privileges
    stale_of        authority -> authority    a previous machine SID -> today's
    sid_history     old sid -> sid      an account lists the old SID in sIDHistory
    belongs_to      sid -> authority    domain-relative SIDs (S-1-5-21-a-b-c-RID)
    identifies      account -> sid
    mapped_to       sid -> sid          a finding's safe mapping (findings.mapped_sid)
    explicit_in     folder -> sid       the folder's descriptor has a non-inherited ACE
                                        naming the SID: the place to fix it

Attribute values are scalars (str, int, float, bool) and never None (absent
instead), so GraphML and GEXF can hold them.
"""

from __future__ import annotations

import enum
import io
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from typing import IO, Callable

import networkx as nx
import sqlite_utils

from aclscan import store
from aclscan.classify import PROBLEMS, split_domain_relative
from aclscan.errors import NotFound
from aclscan.store import FILE_SOURCES, has_table

GRAPH_FORMAT = 1  # the version of the JSON document's layout ("graph_format")

# Node kinds
SID, ACCOUNT, AUTHORITY, DESCRIPTOR, SERVICE, RIGHT, FOLDER = (
    "sid", "account", "authority", "descriptor", "service", "right", "folder")
NODE_KINDS = (SID, ACCOUNT, AUTHORITY, DESCRIPTOR, SERVICE, RIGHT, FOLDER)

# Edge kinds
REFERENCES, MEMBERSHIP, RUNS_AS, GRANTED_RIGHT, STALE_OF, SID_HISTORY, BELONGS_TO, IDENTIFIES, MAPPED_TO, \
    EXPLICIT_IN, WOULD_GO_TO = ("references", "membership", "runs_as", "granted_right", "stale_of", "sid_history",
                                "belongs_to", "identifies", "mapped_to", "explicit_in", "would_go_to")
EDGE_KINDS = (REFERENCES, MEMBERSHIP, RUNS_AS, GRANTED_RIGHT, STALE_OF, SID_HISTORY, BELONGS_TO, IDENTIFIES,
              MAPPED_TO, EXPLICIT_IN, WOULD_GO_TO)

# The authority kinds of the authorities table, strongest claim first: where two
# sources describe the same prefix differently the node keeps the first of these.
_AUTHORITY_RANK = ("machine", "domain", "previous_machine", "other_machine")


def sid_id(sid: str) -> str:
    return f"sid:{sid}"


def authority_id(prefix: str) -> str:
    return f"authority:{prefix}"


def descriptor_id(key: int) -> str:
    return f"descriptor:{key}"


def service_id(name: str) -> str:
    return f"service:{name}"


def right_id(name: str) -> str:
    return f"right:{name}"


# --------------------------------------------------------------------------- building


def _connection(db) -> sqlite3.Connection:
    """A sqlite3 connection from a path (opened and checked through the store), a
    sqlite_utils Database or a connection."""
    if isinstance(db, sqlite3.Connection):
        return db
    if isinstance(db, sqlite_utils.Database):
        return db.conn
    return store.open_database(db).conn


def _scalars(**attributes) -> dict:
    """Attributes without the None values (GraphML and GEXF cannot hold None)."""
    return {k: v for k, v in attributes.items() if v is not None}


class _Builder:
    """Fills one graph from one database; each method reads one table."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.graph = nx.MultiDiGraph()
        self.several_volumes = False

    def sid(self, sid: str) -> str:
        """The node of a SID, made on first sight (labelled by the SID until a name is known)."""
        node = sid_id(sid)
        if node not in self.graph:
            self.graph.add_node(node, kind=SID, sid=sid, label=sid)
        return node

    def authority(self, prefix: str) -> str:
        node = authority_id(prefix)
        if node not in self.graph:
            # A prefix no source described: named for what it is, nothing more.
            self.graph.add_node(node, kind=AUTHORITY, sid=prefix, label=prefix, authority_kind="unknown",
                                complete=False)
        return node

    def volumes(self) -> None:
        rows = self.conn.execute("SELECT id, image, label FROM volumes ORDER BY id").fetchall()
        self.several_volumes = len(rows) > 1
        images = sorted({os.path.basename(image) for _, image, _ in rows if image})
        labels = [label for _, _, label in rows if label]
        self.graph.graph.update(_scalars(
            volumes=len(rows),
            images=", ".join(images) or None,
            volume_labels=", ".join(labels) or None,
        ))

    def findings(self) -> None:
        cursor = self.conn.execute(
            "SELECT sid, verdict, confidence, account, mapped_sid, files, descriptors, explicit_aces,"
            " inherited_aces, as_owner, as_group, hive_references FROM findings ORDER BY sid")
        for (sid, verdict, confidence, account, mapped_sid, files, descriptors, explicit, inherited, as_owner,
             as_group, hive_refs) in cursor:
            node = self.sid(sid)
            self.graph.nodes[node].update(_scalars(
                label=account or sid, verdict=verdict, confidence=confidence, account=account,
                mapped_sid=mapped_sid, problem=verdict in PROBLEMS, files=files or 0, descriptors=descriptors or 0,
                explicit_aces=explicit or 0, inherited_aces=inherited or 0, as_owner=as_owner or 0,
                as_group=as_group or 0, hive_references=hive_refs or 0,
            ))
            if mapped_sid:
                self.graph.add_edge(node, self.sid(mapped_sid), kind=MAPPED_TO)

    def authorities(self) -> None:
        merged: dict[str, dict] = {}
        for prefix, name, kind, complete, source in self.conn.execute(
                "SELECT sid, name, kind, complete, source FROM authorities ORDER BY rowid"):
            seen = merged.setdefault(prefix, {"names": [], "kinds": [], "complete": False, "sources": []})
            if name and name not in seen["names"]:
                seen["names"].append(name)
            if kind and kind not in seen["kinds"]:
                seen["kinds"].append(kind)
            seen["complete"] = seen["complete"] or bool(complete)
            if source and source not in seen["sources"]:
                seen["sources"].append(source)
        for prefix, seen in sorted(merged.items()):
            kinds = sorted(seen["kinds"], key=lambda k: _AUTHORITY_RANK.index(k) if k in _AUTHORITY_RANK else 99)
            name = seen["names"][0] if seen["names"] else None
            kind = kinds[0] if kinds else "unknown"
            label = f"{name} ({kind})" if name else f"{prefix} ({kind})"
            self.graph.add_node(authority_id(prefix), **_scalars(
                kind=AUTHORITY, sid=prefix, label=label, name=name, authority_kind=kind, complete=seen["complete"],
                sources="; ".join(seen["sources"]) or None))
        current = [p for p, seen in merged.items() if "machine" in seen["kinds"]]
        for prefix, seen in sorted(merged.items()):
            if "previous_machine" in seen["kinds"] and "machine" not in seen["kinds"]:
                for today in sorted(current):
                    self.graph.add_edge(authority_id(prefix), authority_id(today), kind=STALE_OF)

    def accounts(self) -> None:
        cursor = self.conn.execute(
            "SELECT sid, name, domain, kind, source, sid_history, members, disabled FROM accounts"
            " ORDER BY sid, source")
        for sid, name, domain, kind, source, history, members, disabled in cursor:
            node = self.sid(sid)
            qualified = f"{domain}\\{name}" if domain and name else name
            attributes = self.graph.nodes[node]
            if qualified and attributes["label"] == sid:  # no finding named it
                attributes["label"] = qualified
            account = f"account:{sid}@{source or ''}"
            self.graph.add_node(account, **_scalars(
                kind=ACCOUNT, sid=sid, label=qualified or sid, name=name, domain=domain, account_kind=kind,
                source=source, disabled=bool(disabled) if disabled is not None else None))
            self.graph.add_edge(account, node, kind=IDENTIFIES)
            for old in json.loads(history or "[]"):
                self.graph.add_edge(self.sid(old), node, kind=SID_HISTORY)
            for member in json.loads(members or "[]"):
                self.membership(member, sid, "accounts")

    def membership(self, member: str, group: str, source: str) -> None:
        """One membership edge per (member, group), however many sources report it."""
        member_node, group_node = self.sid(member), self.sid(group)
        for data in self.graph.get_edge_data(member_node, group_node, default={}).values():
            if data["kind"] == MEMBERSHIP:
                if source not in data["source"].split(", "):
                    data["source"] += f", {source}"
                return
        self.graph.add_edge(member_node, group_node, kind=MEMBERSHIP, source=source)

    def hive_references(self) -> None:
        # Aliases are named in hive references by name: their SIDs come from the accounts.
        alias_sids: dict[str, list[str]] = {}
        for sid, name in self.conn.execute(
                "SELECT DISTINCT sid, name FROM accounts WHERE kind IN ('alias', 'group') AND name IS NOT NULL"):
            alias_sids.setdefault(name.casefold(), []).append(sid)
        unresolved_aliases = 0
        for sid, kind, detail in self.conn.execute(
                "SELECT sid, kind, detail FROM hive_references ORDER BY sid, kind, detail"):
            detail = detail or ""
            if kind == "lsa_right":
                for right in filter(None, (r.strip() for r in detail.split(","))):
                    node = right_id(right)
                    if node not in self.graph:
                        self.graph.add_node(node, kind=RIGHT, name=right, label=right)
                    self.graph.add_edge(self.sid(sid), node, kind=GRANTED_RIGHT)
            elif kind == "alias_member":
                groups = alias_sids.get(detail.casefold(), [])
                # Several groups of one name: only a SAM alias of this machine or BUILTIN holds members here.
                for group in groups:
                    self.membership(sid, group, "hive")
                unresolved_aliases += not groups
            elif kind == "service_logon":
                # "NAME logs on as ACCOUNT" (aclscan.resolve.hive_references); a service name
                # has no backslash, and the first " logs on as " ends it.
                name, found, object_name = detail.partition(" logs on as ")
                if not found:
                    continue
                node = service_id(name)
                if node not in self.graph:
                    self.graph.add_node(node, kind=SERVICE, name=name, object_name=object_name, label=name)
                self.graph.add_edge(node, self.sid(sid), kind=RUNS_AS)
            elif kind == "profile":
                self.graph.nodes[self.sid(sid)]["profile"] = detail
        if unresolved_aliases:
            self.graph.graph["unresolved_alias_members"] = unresolved_aliases

    def descriptors(self) -> None:
        # Descriptors of places (registry keys' sk cells, values, task files) name the
        # places using them, per kind, instead of files.
        uses: dict[int, dict[str, int]] = {}
        if has_table(self.conn, "places"):
            for key, kind, count in self.conn.execute(
                    "SELECT descriptor_key, kind, COUNT(*) FROM places WHERE descriptor_key IS NOT NULL"
                    " GROUP BY descriptor_key, kind"):
                uses.setdefault(key, {})[kind] = count
        cursor = self.conn.execute(
            'SELECT key, volume_id, security_id, source, files, owner, "group", control, sddl, error'
            f" FROM descriptors WHERE volume_id IN {store.LIVE_VOLUMES} ORDER BY key")
        for key, volume_id, security_id, source, files, owner, group, control, sddl, error in cursor:
            node = descriptor_id(key)
            count = files or 0
            kinds = uses.get(key, {})
            if source in FILE_SOURCES or not kinds:
                label = f"descriptor {key} ({count} file{'s' if count != 1 else ''})"
            else:
                label = f"{source} descriptor {key} (" + ", ".join(
                    f"{n} {k.replace('_', ' ')}{'s' if n != 1 else ''}" for k, n in sorted(kinds.items())) + ")"
            self.graph.add_node(node, **_scalars(
                kind=DESCRIPTOR, label=label,
                descriptor_key=key, volume_id=volume_id, security_id=security_id, source=source, files=count,
                places=sum(kinds.values()), place_kinds=",".join(sorted(kinds)) or None,
                owner=owner, group=group, control=control, sddl=sddl, error=error))
            if owner:
                self.graph.add_edge(node, self.sid(owner), kind=REFERENCES, role="owner", count=1)
            if group:
                self.graph.add_edge(node, self.sid(group), kind=REFERENCES, role="group", count=1)
        # Identical ACEs of one descriptor (same SID, type, flags, mask) become one edge with a count.
        cursor = self.conn.execute(
            "SELECT descriptor_key, acl, sid, type, flags, mask, inherited, object_type, MIN(sddl), COUNT(*)"
            " FROM aces WHERE sid IS NOT NULL"
            " GROUP BY descriptor_key, acl, sid, type, flags, mask, inherited, object_type"
            " ORDER BY descriptor_key, acl, MIN(position)")
        for key, acl, sid, ace_type, flags, mask, inherited, object_type, sddl, count in cursor:
            node = descriptor_id(key)
            if node not in self.graph:
                continue  # an ACE row without its descriptor: nothing to hang it on
            self.graph.add_edge(node, self.sid(sid), **_scalars(
                kind=REFERENCES, role=(acl or "").lower() or None, ace_type=ace_type, ace_flags=flags,
                rights=_sddl_rights(sddl), mask=mask, inherited=bool(inherited), object_type=object_type,
                count=count))

    def explicit_folders(self) -> None:
        """Directories whose own descriptor has a non-inherited ACE naming a problem SID.

        Only problem SIDs: on a Windows volume every system folder carries explicit
        ACEs for SYSTEM and Administrators, and those need no fixing. The query goes
        from the few ACE rows to the directories using their descriptors (indexed on
        file_records.descriptor_key), never through every file.
        """
        marks = ", ".join("?" for _ in PROBLEMS)
        cursor = self.conn.execute(
            "SELECT DISTINCT a.sid, r.volume_id, d.path, r.descriptor_key"
            " FROM (SELECT DISTINCT descriptor_key, sid FROM aces WHERE inherited = 0 AND sid IN"
            f"  (SELECT sid FROM findings WHERE verdict IN ({marks}))) a"
            " JOIN file_records r ON r.descriptor_key = a.descriptor_key AND r.is_dir = 1"
            " JOIN directories d ON d.volume_id = r.volume_id AND d.entry = r.entry AND d.sequence = r.sequence"
            " ORDER BY d.path, a.sid",
            sorted(PROBLEMS))
        for sid, volume_id, path, key in cursor:
            node = self.folder_id(volume_id, path)
            if node not in self.graph:
                self.graph.add_node(node, kind=FOLDER, path=path, volume_id=volume_id, descriptor_key=key,
                                    label=self.folder_name(volume_id, path))
            self.graph.add_edge(node, self.sid(sid), kind=EXPLICIT_IN, descriptor_key=key)

    def folder_name(self, volume_id: int, path: str) -> str:
        return f"{volume_id}:{path}" if self.several_volumes else path

    def folder_id(self, volume_id: int, path: str) -> str:
        return f"folder:{self.folder_name(volume_id, path)}"

    def authorities_of_sids(self) -> None:
        for node, data in list(self.graph.nodes(data=True)):
            if data["kind"] != SID:
                continue
            parts = split_domain_relative(data["sid"])
            if parts:
                self.graph.add_edge(node, self.authority(parts[0]), kind=BELONGS_TO)

    def rid_collisions(self) -> None:
        """A rid_collision SID -> the account of this machine that holds its RID today: where a
        naive prefix rewrite would send its access ("would go to MEMBER\\Jon")."""
        machines = [d["sid"] for _, d in self.graph.nodes(data=True)
                    if d["kind"] == AUTHORITY and d.get("authority_kind") == "machine"]
        for node, data in list(self.graph.nodes(data=True)):
            parts = split_domain_relative(data["sid"]) if data.get("verdict") == "rid_collision" else None
            if not parts:
                continue
            for machine in machines:
                holder = sid_id(f"{machine}-{parts[1]}")
                if holder != node and holder in self.graph and any(
                        d["kind"] == IDENTIFIES for _, _, d in self.graph.in_edges(holder, data=True)):
                    name = self.graph.nodes[holder]["label"]
                    self.graph.add_edge(node, holder, kind=WOULD_GO_TO, rid=parts[1], label=f"would go to {name}")

    def summary(self) -> None:
        kinds = [d["kind"] for _, d in self.graph.nodes(data=True)]
        problems = sum(1 for _, d in self.graph.nodes(data=True) if d.get("problem"))
        machines = [d.get("name") for _, d in self.graph.nodes(data=True)
                    if d["kind"] == AUTHORITY and d.get("authority_kind") == "machine" and d.get("name")]
        self.graph.graph.update(_scalars(
            graph_format=GRAPH_FORMAT,
            machine=", ".join(sorted(set(machines))) or None,
            problem_sids=problems,
            sids=kinds.count(SID),
            descriptors=kinds.count(DESCRIPTOR),
        ))


def _sddl_rights(ace_sddl: str | None) -> str | None:
    """The rights field of an ACE's SDDL: '(A;OICI;FA;;;SY)' -> 'FA'."""
    if not ace_sddl:
        return None
    fields = ace_sddl.strip("()").split(";")
    return fields[2] if len(fields) > 2 and fields[2] else None


def build_graph(db) -> nx.MultiDiGraph:
    """The graph of a scan database (a path, a sqlite_utils Database or a sqlite3
    connection). A path that is not a scan database raises DatabaseError."""
    builder = _Builder(_connection(db))
    builder.volumes()
    builder.findings()
    builder.authorities()
    builder.accounts()
    builder.hive_references()
    builder.descriptors()
    builder.explicit_folders()
    builder.authorities_of_sids()
    builder.rid_collisions()
    builder.summary()
    return builder.graph


# --------------------------------------------------------------------------- impact


@dataclass(frozen=True)
class Impact:
    """What a fix of one SID touches, read from the graph."""

    sid: str
    verdict: str | None
    account: str | None
    mapped_sid: str | None
    files: int  # files whose descriptor names the SID (owner, group or ACE)
    descriptors: int  # distinct file descriptors naming it
    descriptor_keys: tuple[int, ...]
    owned_files: int  # files whose owner is the SID
    explicit_descriptors: int  # descriptors with a non-inherited ACE or the SID as owner or group
    folders: tuple[str, ...]  # directories with an explicit ACE naming it: where a fix starts, sorted
    services: tuple[str, ...]  # services that log on as it
    mapped_services: tuple[str, ...]  # services that log on as its mapped SID: they miss what it still holds
    lsa_rights: tuple[str, ...]
    groups: tuple[str, ...]  # SIDs of the groups it is a member of
    members: tuple[str, ...]  # SIDs of its members, where it is a group
    history_of: tuple[str, ...]  # SIDs of the accounts that carry it in sIDHistory
    places: int = 0  # places other than files (registry keys, services, shares, tasks, ...) naming it
    place_descriptor_keys: tuple[int, ...] = ()  # the distinct descriptors of those places


def impact(graph: nx.MultiDiGraph, sid: str) -> Impact:
    """The impact of one SID; NotFound (a KeyError) when the graph has no such SID."""
    node = sid_id(sid)
    if node not in graph:
        raise NotFound(f"no SID {sid} in the graph")
    data = graph.nodes[node]
    descriptor_keys: set[int] = set()
    place_keys: set[int] = set()
    owners: set[int] = set()
    explicit: set[int] = set()
    folders, services, groups, members, history_of = set(), set(), set(), set(), set()
    for source, _, edge in graph.in_edges(node, data=True):
        kind = edge["kind"]
        if kind == REFERENCES:
            key = graph.nodes[source]["descriptor_key"]
            if graph.nodes[source].get("source") not in FILE_SOURCES:
                place_keys.add(key)
                continue
            descriptor_keys.add(key)
            if edge.get("role") == "owner":
                owners.add(key)
            if edge.get("role") in ("owner", "group") or edge.get("inherited") is False:
                explicit.add(key)
        elif kind == EXPLICIT_IN:
            folders.add(graph.nodes[source]["label"])
        elif kind == RUNS_AS:
            services.add(graph.nodes[source]["name"])
        elif kind == MEMBERSHIP:
            members.add(graph.nodes[source]["sid"])
    rights = set()
    for _, target, edge in graph.out_edges(node, data=True):
        kind = edge["kind"]
        if kind == GRANTED_RIGHT:
            rights.add(graph.nodes[target]["name"])
        elif kind == MEMBERSHIP:
            groups.add(graph.nodes[target]["sid"])
        elif kind == SID_HISTORY:
            history_of.add(graph.nodes[target]["sid"])
    files_of = lambda keys: sum(graph.nodes[descriptor_id(k)].get("files", 0) for k in keys)  # noqa: E731
    return Impact(
        sid=sid, verdict=data.get("verdict"), account=data.get("account"), mapped_sid=data.get("mapped_sid"),
        files=files_of(descriptor_keys), descriptors=len(descriptor_keys),
        descriptor_keys=tuple(sorted(descriptor_keys)), owned_files=files_of(owners),
        explicit_descriptors=len(explicit), folders=tuple(sorted(folders)), services=tuple(sorted(services)),
        mapped_services=_services_of(graph, data.get("mapped_sid")), lsa_rights=tuple(sorted(rights)), groups=tuple(sorted(groups)), members=tuple(sorted(members)),
        history_of=tuple(sorted(history_of)),
        places=sum(graph.nodes[descriptor_id(k)].get("places", 0) for k in place_keys),
        place_descriptor_keys=tuple(sorted(place_keys)),
    )


def _services_of(graph: nx.MultiDiGraph, sid: str | None) -> tuple[str, ...]:
    node = sid_id(sid) if sid else None
    if node not in graph:
        return ()
    return tuple(sorted({graph.nodes[s]["name"] for s, _, d in graph.in_edges(node, data=True) if d["kind"] == RUNS_AS}))


# --------------------------------------------------------------------------- safe text

# Characters a label must not carry raw: C0/C1 controls (a terminal escape, a line
# break that would split a DOT statement), unpaired surrogates (not encodable), and
# the bidirectional overrides that make a picture read differently from its text.
_UNSAFE_IN_LABEL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Characters XML 1.0 cannot hold at all (GraphML, GEXF).
_UNSAFE_IN_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def label_safe(text: str) -> str:
    """A label for a picture or a DOT file: unsafe characters shown as \\xNN / \\uNNNN."""
    return _UNSAFE_IN_LABEL.sub(_escape, text)


def xml_safe(text: str) -> str:
    """Text XML can hold: characters XML 1.0 forbids shown as \\xNN / \\uNNNN."""
    return _UNSAFE_IN_XML.sub(_escape, text)


def _xml_safe_graph(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """A copy whose ids and string attributes XML can hold (names on a volume can
    contain any character but NUL and '/')."""
    fix = lambda v: xml_safe(v) if isinstance(v, str) else v  # noqa: E731
    safe = nx.MultiDiGraph()
    safe.graph.update({k: fix(v) for k, v in graph.graph.items()})
    for node, data in graph.nodes(data=True):
        safe.add_node(fix(node), **{k: fix(v) for k, v in data.items()})
    for source, target, key, data in graph.edges(keys=True, data=True):
        safe.add_edge(fix(source), fix(target), key=key, **{k: fix(v) for k, v in data.items()})
    return safe


# --------------------------------------------------------------------------- writers


def _write_graphml(graph: nx.MultiDiGraph, out: IO[bytes]) -> None:
    nx.write_graphml(_xml_safe_graph(graph), out, encoding="utf-8")


def _write_gexf(graph: nx.MultiDiGraph, out: IO[bytes]) -> None:
    nx.write_gexf(_xml_safe_graph(graph), out, encoding="utf-8")


def graph_document(graph: nx.MultiDiGraph) -> dict:
    """The JSON document: networkx node-link data (``nodes``, ``edges``; edges carry
    ``source``, ``target``, ``key``), sorted, with ``"graph_format": 1`` on top.
    ``networkx.node_link_graph(document)`` reads it back."""
    data = nx.node_link_data(graph, edges="edges")
    data["nodes"].sort(key=lambda n: n["id"])
    data["edges"].sort(key=lambda e: (e["source"], e["target"], str(e["key"])))
    return {"graph_format": GRAPH_FORMAT, **data}


def _write_json(graph: nx.MultiDiGraph, out: IO[bytes]) -> None:
    text = json.dumps(graph_document(graph), ensure_ascii=False, sort_keys=True, indent=1)
    # An unpaired surrogate becomes the JSON escape \udXXX: valid UTF-8, and read back as it was.
    out.write(text.encode("utf-8", "backslashreplace"))
    out.write(b"\n")


def _dot_quote(text: str) -> str:
    """A DOT quoted string: unsafe characters shown, backslashes and quotes escaped,
    so no name can end the string or the statement."""
    return '"' + label_safe(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_lines(*parts: str) -> str:
    """A multi-line DOT label: each part quoted safely, joined by DOT's own \\n."""
    return '"' + "\\n".join(_dot_quote(p)[1:-1] for p in parts if p) + '"'


VERDICT_COLOURS = {
    "resolved": "#9bd49b",
    "orphan": "#e34a33",
    "stale_prefix": "#fd8d3c",
    "rid_collision": "#b30000",
    "sid_history": "#fdd049",
    "foreign_machine": "#c994c7",
    "unknown_authority": "#8c6bb1",
    "unresolved": "#bdbdbd",
    "placeholder": "#deebf7",
    "transient": "#deebf7",
    "inconsistent_hives": "#662506",
}
UNCLASSIFIED_COLOUR = "#ffffff"  # a SID the scan did not classify (a group known only from the hives)
KIND_COLOURS = {ACCOUNT: "#f0f0f0", AUTHORITY: "#c6dbef", DESCRIPTOR: "#e5e5e5", SERVICE: "#a1d99b",
                RIGHT: "#fee6ce", FOLDER: "#fff7bc"}
EDGE_COLOURS = {REFERENCES: "#969696", MEMBERSHIP: "#3182bd", RUNS_AS: "#31a354", GRANTED_RIGHT: "#e6550d",
                STALE_OF: "#de2d26", SID_HISTORY: "#8c510a", BELONGS_TO: "#c6dbef", IDENTIFIES: "#d9d9d9",
                MAPPED_TO: "#756bb1", EXPLICIT_IN: "#252525", WOULD_GO_TO: "#d7191c"}
_DOT_SHAPES = {SID: "ellipse", ACCOUNT: "note", AUTHORITY: "house", DESCRIPTOR: "box", SERVICE: "component",
               RIGHT: "cds", FOLDER: "folder"}


def node_colour(data: dict) -> str:
    if data["kind"] == SID:
        return VERDICT_COLOURS.get(data.get("verdict"), UNCLASSIFIED_COLOUR)
    return KIND_COLOURS[data["kind"]]


def _write_dot(graph: nx.MultiDiGraph, out: IO[bytes]) -> None:
    # Nodes get generated names (n0, n1, ...); ids and labels only ever appear quoted.
    names = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    title = _title(graph)
    lines = [
        "digraph aclscan {",
        f"  graph [rankdir=LR, labelloc=t, label={_dot_quote(title)}];",
        '  node [style=filled, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    for node, data in graph.nodes(data=True):
        extra = data.get("verdict") or (f"{data['files']} files" if data["kind"] == DESCRIPTOR else "")
        lines.append(
            f"  {names[node]} [label={_dot_lines(str(data['label']), extra)}, tooltip={_dot_quote(node)},"
            f" shape={_DOT_SHAPES[data['kind']]}, fillcolor={_dot_quote(node_colour(data))}];")
    for source, target, data in graph.edges(data=True):
        text = data.get("label") or (data["kind"] if data["kind"] != REFERENCES
                                     else data.get("rights") or data.get("role", ""))
        style = "dashed" if data["kind"] in (STALE_OF, MAPPED_TO, SID_HISTORY) else "solid"
        lines.append(f"  {names[source]} -> {names[target]} [label={_dot_quote(text)},"
                     f" color={_dot_quote(EDGE_COLOURS[data['kind']])}, style={style}];")
    lines.append("}")
    out.write(("\n".join(lines) + "\n").encode("utf-8", "backslashreplace"))


def _title(graph: nx.MultiDiGraph) -> str:
    attributes = graph.graph
    where = attributes.get("machine") or attributes.get("volume_labels") or "scan"
    image = f" ({attributes['images']})" if attributes.get("images") else ""
    return (f"aclscan: {where}{image}: {attributes.get('sids', 0)} SIDs,"
            f" {attributes.get('problem_sids', 0)} with problems, {attributes.get('descriptors', 0)} descriptors")


def _write_png(graph: nx.MultiDiGraph, out: IO[bytes]) -> None:
    from aclscan.graph_picture import draw_png  # matplotlib is imported only for pictures

    draw_png(graph, out, _title(graph))


class GraphFormat(str, enum.Enum):
    GRAPHML = "graphml"
    GEXF = "gexf"
    JSON = "json"
    DOT = "dot"
    PNG = "png"

    @property
    def is_binary(self) -> bool:
        """Not for a terminal: the command writes it only to a file (-o)."""
        return self is GraphFormat.PNG


WRITERS: dict[GraphFormat, Callable[[nx.MultiDiGraph, IO[bytes]], None]] = {
    GraphFormat.GRAPHML: _write_graphml,
    GraphFormat.GEXF: _write_gexf,
    GraphFormat.JSON: _write_json,
    GraphFormat.DOT: _write_dot,
    GraphFormat.PNG: _write_png,
}


def write_graph(graph: nx.MultiDiGraph, fmt: GraphFormat | str, out: IO[bytes]) -> None:
    """Write the graph in a format to a binary stream."""
    WRITERS[GraphFormat(fmt)](graph, out)


def render(graph: nx.MultiDiGraph, fmt: GraphFormat | str) -> bytes:
    """The graph in a format, as bytes."""
    buffer = io.BytesIO()
    write_graph(graph, fmt, buffer)
    return buffer.getvalue()


def problem_sids(graph: nx.MultiDiGraph) -> list[str]:
    """The SIDs with a problem verdict, most files first."""
    nodes = [(d.get("files", 0), d["sid"]) for _, d in graph.nodes(data=True) if d["kind"] == SID and d.get("problem")]
    return [sid for _, sid in sorted(nodes, key=lambda item: (-item[0], item[1]))]
