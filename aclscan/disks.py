"""Virtual machine disks: VHD, VHDX and VMDK read through libyal's readers
(libvhdi, libvmdk), qcow2 through aclscan.qcow2 (see there why not libqcow);
read-only.

A disk's format is told from its content, never its name: qcow2 starts "QFI\\xfb",
VHDX "vhdxfile", a sparse VMDK "KDMV" (or "COWD"), a VMDK descriptor
"# Disk DescriptorFile", a dynamic VHD "conectix", and a fixed VHD ends with
that footer. A differencing disk (VHD/VHDX differencing, a VMDK with a parent,
a qcow2 with a qcow2 or raw backing file) is read through its chain: each parent
is found where the child records it (as given, then beside the child), or taken
from ``--parent`` (nearest first); a parent that is missing, or is not the disk
the child was made from (VHD/VHDX identifiers, VMDK content ids; qcow2 records
no identity of its backing file), is one clear
error. Only aclscan.image uses this module.
"""

from __future__ import annotations

import ntpath
import os
import shlex
from dataclasses import dataclass

from aclscan import qcow2
from aclscan.errors import ImageError
from aclscan.inputs import check_input_file

VHD, VHDX, VMDK, QCOW2 = "vhd", "vhdx", "vmdk", "qcow2"
KINDS = (VHD, VHDX, VMDK, QCOW2)
QEMU_FORMAT = {VHD: "vpc", VHDX: "vhdx", VMDK: "vmdk", QCOW2: "qcow2"}  # qemu-img's names
VHD_FOOTER = b"conectix"
VHD_FOOTER_SIZE = 512
MAX_CHAIN = 64  # parents followed before a chain is called a loop
HEAD_SIZE = 1024


def detect(path: str) -> str | None:
    """The virtual disk format of the file at ``path``, from its content; None for
    anything else (a raw image, a block device's content is never sniffed for a footer)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_SIZE)
            tail = b""
            size = os.fstat(fh.fileno()).st_size
            if size >= VHD_FOOTER_SIZE and os.path.isfile(path):
                fh.seek(size - VHD_FOOTER_SIZE)
                tail = fh.read(VHD_FOOTER_SIZE)
    except OSError:
        return None
    return detect_bytes(head, tail)


def detect_bytes(head: bytes, tail: bytes = b"") -> str | None:
    """The format a disk's first bytes (and last 512 bytes) say."""
    if head.startswith(b"QFI\xfb"):
        return QCOW2
    if head.startswith(b"vhdxfile"):
        return VHDX
    if head.startswith((b"KDMV", b"COWD")) or head.lstrip().startswith(b"# Disk DescriptorFile"):
        return VMDK
    if head.startswith(VHD_FOOTER) or tail.startswith(VHD_FOOTER) or tail[1:].startswith(VHD_FOOTER):
        return VHD
    return None


def convert_command(kind: str, path: str) -> str:
    """The qemu-img command that makes a raw copy of a disk (chain included) that
    ``fix`` can write, and the one that turns it back into the disk's format."""
    stem = os.path.splitext(path)[0]
    raw = f"{stem}.raw"
    return (f"qemu-img convert -O raw {shlex.quote(path)} {shlex.quote(raw)}, fix {shlex.quote(raw)}, then "
            f"qemu-img convert -O {QEMU_FORMAT[kind]} {shlex.quote(raw)} NEW-DISK")


@dataclass
class _Layer:
    path: str
    handle: object


class VirtualDisk:
    """A virtual disk with its parents, as one read-only byte stream."""

    def __init__(self, path: str, kind: str, parents: tuple[str, ...] = ()):
        self.path, self.kind = path, kind
        self._layers: list[_Layer] = []
        self._top: qcow2.Qcow2Reader | None = None
        self._extent_files: list = []  # file objects handed to libvmdk, closed after it
        given = list(parents)
        try:
            if kind == QCOW2:
                self._top = self._open_qcow2(path, given, {os.path.realpath(path)})
                self._check_all_used(given, parents)
                self.size = self._top.size
                return
            child = self._open_layer(path, kind)
            seen = {os.path.realpath(path)}
            while True:
                recorded = _parent_name(kind, child.handle)
                if not recorded:
                    break
                if len(self._layers) > MAX_CHAIN:
                    raise ImageError(f"{path}: more than {MAX_CHAIN} parent disks (a loop?)")
                parent_path = given.pop(0) if given else _find_parent(child.path, recorded)
                if os.path.realpath(parent_path) in seen:
                    raise ImageError(f"{child.path}: its parent chain loops back to {parent_path}")
                seen.add(os.path.realpath(parent_path))
                parent_kind = detect(parent_path)
                if parent_kind is None:
                    raise ImageError(f"{child.path}: its parent {parent_path} is not a {kind.upper()} disk "
                                     f"(a raw parent cannot be read through lib{_LIBRARY[kind]})")
                if parent_kind != kind:
                    raise ImageError(f"{child.path}: its parent {parent_path} is a {parent_kind.upper()} disk, "
                                     f"not {kind.upper()}")
                parent = self._open_layer(parent_path, kind)
                _check_parent(kind, child, parent)
                try:
                    child.handle.set_parent(parent.handle)
                except (OSError, IOError, TypeError) as exc:
                    raise ImageError(f"{child.path}: cannot use {parent_path} as its parent: {_message(exc)}") from None
                child = parent
            self._check_all_used(given, parents)
            self.size = int(self._layers[0].handle.get_media_size())
        except BaseException:
            self.close()
            raise

    def _check_all_used(self, left: list[str], parents: tuple[str, ...]) -> None:
        if left:
            raise ImageError(f"{self.path}: --parent given {len(parents)} time(s), but the chain has only "
                             f"{len(parents) - len(left)} parent(s)")

    def _open_qcow2(self, path: str, given: list[str], seen: set[str]) -> qcow2.Qcow2Reader:
        """A qcow2 file over its backing chain (qcow2 or raw backing files), read by
        aclscan.qcow2."""
        check_input_file(path, "QCOW2 disk", ImageError, devices=False)
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise ImageError(f"cannot open QCOW2 disk {path}: {exc.strerror or exc}") from None
        self._layers.append(_Layer(path, fh))
        header = qcow2.read_header(fh, path)
        backing = None
        if header.backing_file:
            if len(self._layers) > MAX_CHAIN:
                raise ImageError(f"{self.path}: more than {MAX_CHAIN} backing files (a loop?)")
            parent = given.pop(0) if given else _find_parent(path, header.backing_file)
            if os.path.realpath(parent) in seen:
                raise ImageError(f"{path}: its backing chain loops back to {parent}")
            seen.add(os.path.realpath(parent))
            parent_kind = detect(parent)
            if parent_kind == QCOW2:
                backing = self._open_qcow2(parent, given, seen)
            elif parent_kind is None and header.backing_format in (None, "raw"):
                backing = self._open_raw(parent)
            else:
                what = parent_kind.upper() if parent_kind else f"{header.backing_format} "
                raise ImageError(f"{path}: its backing file {parent} is a {what} disk: aclscan reads qcow2 and raw "
                                 "backing files")
        return qcow2.Qcow2Reader(fh, path, backing)

    def _open_raw(self, path: str) -> "_RawFile":
        check_input_file(path, "backing file", ImageError, devices=False)
        raw = _RawFile(path)
        self._layers.append(_Layer(path, raw))
        return raw

    @property
    def chain(self) -> list[str]:
        """The disk, then its parents, nearest first."""
        return [layer.path for layer in self._layers]

    def _open_layer(self, path: str, kind: str) -> _Layer:
        check_input_file(path, f"{kind.upper()} disk", ImageError, devices=False)
        module = _module(kind)
        handle = module.handle() if kind == VMDK else module.file()
        layer = _Layer(path, handle)
        try:
            handle.open(path)  # libyal opens read-only unless told otherwise
        except (OSError, IOError) as exc:
            raise ImageError(f"cannot open {kind.upper()} disk {path} (damaged, truncated, or a version "
                             f"lib{_LIBRARY[kind]} does not read): {_message(exc)}") from None
        self._layers.append(layer)
        if kind == VMDK:
            self._open_extents(layer)
        return layer

    def _open_extents(self, layer: _Layer) -> None:
        """A VMDK descriptor names its extent files; each must be there (beside it).
        A monolithic sparse disk is its own one extent, whatever it is called now."""
        folder = os.path.dirname(os.path.abspath(layer.path))
        extents = list(layer.handle.extent_descriptors)
        missing = [e.filename for e in extents if e.filename and not os.path.isfile(os.path.join(folder, e.filename))]
        try:
            if missing and len(extents) == 1 and _starts_with_sparse_magic(layer.path):
                itself = open(layer.path, "rb")
                self._extent_files.append(itself)
                layer.handle.open_extent_data_files_as_file_objects([itself])
                return
            if missing:
                raise ImageError(f"{layer.path}: the extent {missing[0]!r} it names is missing "
                                 f"(looked for {os.path.join(folder, missing[0])})")
            layer.handle.open_extent_data_files()
        except (OSError, IOError) as exc:
            if isinstance(exc, ImageError):
                raise
            raise ImageError(f"{layer.path}: cannot open its extent files: {_message(exc)}") from None

    def read(self, offset: int, size: int) -> bytes:
        if self._top is not None:
            return self._top.read(offset, size)
        try:
            return self._layers[0].handle.read_buffer_at_offset(size, offset)
        except (OSError, IOError) as exc:
            raise ImageError(f"cannot read {size} bytes at {offset} of {self.path}: {_message(exc)}") from None

    def close(self) -> None:
        for layer in self._layers:
            try:
                layer.handle.close()
            except (OSError, IOError):
                pass
        for fh in self._extent_files:
            fh.close()
        self._layers, self._extent_files = [], []


def _starts_with_sparse_magic(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in (b"KDMV", b"COWD")


class _RawFile:
    """A raw backing file as a byte source."""

    def __init__(self, path: str):
        self._fh = open(path, "rb")
        self.size = os.fstat(self._fh.fileno()).st_size

    def read(self, offset: int, size: int) -> bytes:
        self._fh.seek(offset)
        return self._fh.read(size)

    def close(self) -> None:
        self._fh.close()


_LIBRARY = {VHD: "vhdi", VHDX: "vhdi", VMDK: "vmdk"}


def _module(kind: str):
    if kind in (VHD, VHDX):
        import pyvhdi

        return pyvhdi
    import pyvmdk

    return pyvmdk


def _parent_name(kind: str, handle) -> str | None:
    if kind == VMDK:
        name = handle.get_parent_filename()
    else:
        name = handle.get_parent_filename() if handle.get_parent_identifier() else None
    return name or None


def _find_parent(child: str, recorded: str) -> str:
    """Where the child's recorded parent is: the path as recorded (absolute, or
    relative to the child's folder), then its last component beside the child
    (a Windows path such as C:\\VMs\\template.vhdx, recorded on another machine)."""
    folder = os.path.dirname(os.path.abspath(child))
    candidates = [recorded] if os.path.isabs(recorded) else []
    candidates += [os.path.join(folder, recorded.replace("\\", os.sep)), os.path.join(folder, ntpath.basename(recorded))]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ImageError(f"{child}: its parent disk {recorded!r} is missing (looked for {', '.join(dict.fromkeys(candidates))});"
                     " give it with --parent FILE")


def _check_parent(kind: str, child: _Layer, parent: _Layer) -> None:
    """A parent must be the disk the child was made from, where the format says which."""
    if kind in (VHD, VHDX):
        wanted, found, what = child.handle.get_parent_identifier(), parent.handle.get_identifier(), "identifier"
    elif kind == VMDK:
        # content ids (CID, parentCID) as the descriptor writes them: 8 hex digits
        wanted = f"{child.handle.get_parent_content_identifier():08x}"
        found = f"{parent.handle.get_content_identifier():08x}"
        what = "CID"
    if wanted and found and str(wanted).lower() != str(found).lower():
        raise ImageError(f"{child.path}: parent {parent.path} is not the disk it was made from ({what} {found}, "
                         f"expected {wanted})")


def _message(exc: BaseException) -> str:
    """A libyal error as one line: its innermost, most specific clauses."""
    clauses = [c.strip() for c in str(exc).replace("\n", " ").split(". ") if c.strip()]
    text = ". ".join(clauses[-2:]) if clauses else exc.__class__.__name__
    return " ".join(text.split()).rstrip(".")
