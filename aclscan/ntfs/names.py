"""File names and paths from `$FILE_NAME` columns.

A file can carry several `$FILE_NAME` attributes: hard links (each a POSIX or
Win32 name, possibly with a DOS 8.3 alias beside it). Its primary name is the
first by name space preference (Win32, then POSIX, then DOS); every non-DOS name
is a link. Paths are built once per directory: a directory's path comes from
its parent's, and a file's from its parent directory's path and its own name.

A parent reference is sound when it names an in-use directory with the same
sequence number; otherwise (deleted, reused, not a directory, or a loop of
references) the file is an orphan and its path starts with ``/$OrphanFiles/``,
as The Sleuth Kit shows it. A record with no name at all (Windows' reserved
records 12-15) is ``/$OrphanFiles/OrphanFile-<entry>``.
"""

from __future__ import annotations

import numpy as np

ROOT_ENTRY = 5
ORPHAN_DIRECTORY = "/$OrphanFiles"
NAMESPACE_DOS = 2

# Rank of each name space (0 POSIX, 1 Win32, 2 DOS, 3 Win32+DOS): lower is preferred.
_NAMESPACE_RANK = np.array([1, 0, 2, 0], dtype=np.int8)


def decode_name(utf16: bytes) -> str:
    """One NTFS name. Names are UTF-16 code units with no validation: an unpaired
    surrogate cannot be stored as UTF-8 and becomes U+FFFD."""
    return utf16.decode("utf-16-le", "replace")


def decode_names(blob: bytes, starts: list[int], ends: list[int]) -> list[str | None]:
    """Names at code-unit offsets [start, end) of a UTF-16LE blob (None where start < 0).

    Decoding the blob once and slicing is fast, but string indices follow code
    points: once a surrogate pair has been seen they no longer match code units,
    so a blob with any surrogate is decoded name by name.
    """
    units = np.frombuffer(blob, dtype="<u2", count=len(blob) // 2)
    if not ((units >= 0xD800) & (units <= 0xDFFF)).any():
        text = blob.decode("utf-16-le")
        return [text[a:b] if a >= 0 else None for a, b in zip(starts, ends)]
    return [decode_name(blob[2 * a : 2 * b]) if a >= 0 else None for a, b in zip(starts, ends)]


def primary_names(owner: np.ndarray, namespace: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``count`` files numbered 0..count-1 and their names (``owner[i]`` is the
    file of name i): the index of each file's primary name (-1 if it has none) and
    its number of links (non-DOS names)."""
    primary = np.full(count, -1, dtype=np.int64)
    if len(owner):
        rank = _NAMESPACE_RANK[namespace & 3]
        order = np.lexsort((rank, owner))
        sorted_owner = owner[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = sorted_owner[1:] != sorted_owner[:-1]
        primary[sorted_owner[first]] = order[first]
    links = np.bincount(owner[namespace != NAMESPACE_DOS], minlength=count)[:count]
    return primary, links.astype(np.int64)


def join_path(parent_path: str | None, name: str | None, entry: int) -> str:
    """A record's path from its parent directory's path (None: parent unsound)."""
    if entry == ROOT_ENTRY:
        return "/"
    if name is None:
        return f"{ORPHAN_DIRECTORY}/OrphanFile-{entry}"
    if parent_path is None:
        return f"{ORPHAN_DIRECTORY}/{name}"
    if parent_path == "/":
        return "/" + name
    return f"{parent_path}/{name}"


class DirectoryTree:
    """Paths of every directory of a volume, resolved once each."""

    def __init__(self, entry, sequence, parent, parent_sequence, name):
        self._node = {
            int(e): (int(s), int(p), int(ps), n)
            for e, s, p, ps, n in zip(entry, sequence, parent, parent_sequence, name)
        }
        self._path: dict[int, str] = {}

    def is_sound_parent(self, parent: int, parent_sequence: int) -> bool:
        node = self._node.get(parent)
        return node is not None and node[0] == parent_sequence

    def parent_path(self, parent: int, parent_sequence: int) -> str | None:
        """The path of a referenced directory, or None if the reference is unsound."""
        if not self.is_sound_parent(parent, parent_sequence):
            return None
        return self.path(parent)

    def path(self, entry: int) -> str:
        known = self._path.get(entry)
        if known is not None:
            return known
        # Most directories come after their parent in MFT order: one step from its path.
        _sequence, parent, parent_sequence, name = self._node[entry]
        parent_path = self._path.get(parent) if entry != ROOT_ENTRY else None
        if parent_path is not None and self.is_sound_parent(parent, parent_sequence):
            known = self._path[entry] = join_path(parent_path, name, entry)
            return known
        # Walk up iteratively (trees can be thousands deep), then fill in downwards.
        chain: list[int] = []
        on_chain: set[int] = set()
        current = entry
        base: str | None = None
        while True:
            if current in self._path:
                base = self._path[current]
                break
            if current in on_chain:  # a loop of parent references: the loop is orphaned
                base = None
                chain.append(-1)
                break
            chain.append(current)
            on_chain.add(current)
            if current == ROOT_ENTRY:
                base = "/"
                break
            _sequence, parent, parent_sequence, _name = self._node[current]
            if not self.is_sound_parent(parent, parent_sequence):
                base = None
                chain.append(-1)
                break
            current = parent
        if chain and chain[-1] == -1:
            chain.pop()
            parent_path: str | None = None
        elif chain and chain[-1] == ROOT_ENTRY:
            chain.pop()
            self._path[ROOT_ENTRY] = "/"
            parent_path = "/"
        else:
            parent_path = base
        for node in reversed(chain):
            name = self._node[node][3]
            parent_path = join_path(parent_path, name, node)
            self._path[node] = parent_path
        return self._path[entry]

    def items(self):
        """(entry, sequence, path) of every directory."""
        for entry, (sequence, _parent, _parent_sequence, _name) in self._node.items():
            yield entry, sequence, self.path(entry)
