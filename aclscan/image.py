"""The image layer: the only module that touches pytsk3 (and libewf).

It opens an image read-only (raw/dd, split raw ``.001 .002 ...``, E01 sets,
block devices), finds the NTFS volumes in it (whole-disk images with MBR or GPT
partition tables, or a bare volume) and hands out byte streams: the `$MFT`, the
`$Secure:$SDS` stream, an attribute of any record, a file by path. Everything
above this module works on bytes.

pytsk3 serves for what it does well (reading image containers, partition
tables); the NTFS volume itself is read with the project's parsers
(aclscan.ntfs.records, aclscan.ntfs.index), so no volume depends on the cluster
sizes The Sleuth Kit supports.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import signal
import struct
import tempfile
import threading
import zlib
from dataclasses import dataclass
from typing import Iterator

import pytsk3

from aclscan import disks
from aclscan.errors import CorruptRecord, Error, ImageError, NotFound, NotNTFS
from aclscan.inputs import check_input_file
from aclscan.ntfs import lznt1
from aclscan.ntfs.index import FILE_NAME_INDEX, UpCase, parse_index_block, parse_index_root
from aclscan.ntfs.mft import BootSector
from aclscan.ntfs.records import AttributeRecord, FileRecord, parse_attribute_list, parse_record, stream_extents

# Attribute type codes and system file numbers (MS names in the NTFS docs).
ATTR_TYPE_ATTRIBUTE_LIST = 0x20
ATTR_TYPE_SECURITY_DESCRIPTOR = 0x50
ATTR_TYPE_DATA = 0x80
ATTR_TYPE_INDEX_ROOT = 0x90
ATTR_TYPE_INDEX_ALLOCATION = 0xA0
MFT_ENTRY_MFT = 0
MFT_ENTRY_ROOT = 5
MFT_ENTRY_SECURE = 9
MFT_ENTRY_UPCASE = 10
MAX_INDEX_DEPTH = 32  # B-tree levels followed before a directory index is called corrupt

_SPLIT_RE = re.compile(r"^(?P<stem>.*)\.(?P<num>\d{3})$")
_EWF_RE = re.compile(r"\.(e|ex|s|l)01$", re.IGNORECASE)


class _SegmentedImage(pytsk3.Img_Info):
    """A pytsk3 image over a list of read-only segment files (split raw)."""

    def __init__(self, paths: list[str]):
        self._files = [open(p, "rb") for p in paths]  # read-only by construction
        self._starts: list[int] = []
        total = 0
        for fh in self._files:
            self._starts.append(total)
            total += os.fstat(fh.fileno()).st_size
        self._size = total
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def close(self) -> None:
        for fh in self._files:
            fh.close()

    def read(self, offset: int, size: int) -> bytes:
        out = bytearray()
        index = max(0, _bisect_right(self._starts, offset) - 1)
        while size > 0 and index < len(self._files):
            fh = self._files[index]
            start = self._starts[index]
            fh.seek(offset - start)
            end = self._starts[index + 1] if index + 1 < len(self._starts) else self._size
            chunk = fh.read(min(size, end - offset))
            if not chunk:
                break
            out += chunk
            offset += len(chunk)
            size -= len(chunk)
            index += 1
        return bytes(out)

    def get_size(self) -> int:
        return self._size


class _EwfImage(pytsk3.Img_Info):
    """A pytsk3 image over an Expert Witness (E01) segment set through libewf."""

    def __init__(self, paths: list[str]):
        import pyewf  # libewf-python; imported here so raw images never need it

        self._handle = pyewf.handle()
        self._handle.open(paths)  # libewf opens read-only unless asked otherwise
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def close(self) -> None:
        self._handle.close()

    def read(self, offset: int, size: int) -> bytes:
        self._handle.seek(offset)
        return self._handle.read(size)

    def get_size(self) -> int:
        return self._handle.get_media_size()


class _VirtualDiskImage(pytsk3.Img_Info):
    """A pytsk3 image over a virtual machine disk and its parents (aclscan.disks)."""

    def __init__(self, disk):
        self._disk = disk
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def close(self) -> None:
        self._disk.close()

    def read(self, offset: int, size: int) -> bytes:
        return self._disk.read(offset, size)

    def get_size(self) -> int:
        return self._disk.size


def _bisect_right(values: list[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


DEFAULT_MAX_EXPAND = 64 << 30  # bytes a compressed image may expand to, unless --max-expand says
EXPAND_CHUNK = 1 << 20
HEAD_BYTES = 1 << 16  # what is read of a compressed image before deciding to expand it
SECTOR = 512
MBR_PARTITIONS = 446
MBR_SIGNATURE = b"\x55\xaa"
GPT_PROTECTIVE = 0xEE
GPT_SIGNATURE = b"EFI PART"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ImageInput:
    """An image's path and how to read it: the most a compressed image may expand
    to, and parent disks of a differencing disk given by hand (``--parent``).
    Usable wherever a path is (``os.fspath`` gives the path)."""

    path: str
    max_expand: int = DEFAULT_MAX_EXPAND
    parents: tuple[str, ...] = ()

    def __fspath__(self) -> str:
        return self.path


def image_segments(path: str | os.PathLike) -> tuple[str, list[str]]:
    """Return the image kind ('raw', 'split', 'ewf', 'gzip', or a virtual disk format:
    'vhd', 'vhdx', 'vmdk', 'qcow2', told from the content) and its ordered segment files."""
    text = os.fspath(path)
    if not os.path.lexists(text):
        raise ImageError(f"image not found: {text}")
    check_input_file(text, "image", ImageError)
    if text.lower().endswith(".gz") or _starts_with(text, GZIP_MAGIC):
        return "gzip", [text]
    if _EWF_RE.search(text):
        import pyewf

        segments = sorted(pyewf.glob(text))
        for segment in segments:
            check_input_file(segment, "image segment", ImageError)
        return "ewf", segments
    kind = disks.detect(text)
    if kind is not None:
        return kind, [text]
    match = _SPLIT_RE.match(text)
    if match and os.path.isfile(text):
        siblings = sorted(glob.glob(glob.escape(match["stem"]) + ".[0-9][0-9][0-9]"))
        if len(siblings) > 1:
            for segment in siblings:
                check_input_file(segment, "image segment", ImageError)
            return "split", siblings
    return "raw", [text]


def _starts_with(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    except OSError:
        return False


def stated_image_size(head: bytes) -> int | None:
    """The bytes an image needs, as its first sectors state it: an NTFS volume's
    size (its boot sector, the backup boot sector included), or the end of the last
    partition (MBR) or of the disk (GPT's backup header). None when the head holds
    neither a partition table nor an NTFS boot sector."""
    if head[3:11] == b"NTFS    ":
        try:
            boot = BootSector.from_bytes(head[:SECTOR])
        except NotNTFS:
            return None
        return (boot.total_sectors + 1) * boot.bytes_per_sector
    if len(head) < SECTOR or head[510:512] != MBR_SIGNATURE:
        return None
    end = 0
    for index in range(4):
        entry = head[MBR_PARTITIONS + 16 * index : MBR_PARTITIONS + 16 * (index + 1)]
        kind = entry[4]
        first, count = struct.unpack_from("<II", entry, 8)
        if kind == 0 or count == 0:
            continue
        if kind == GPT_PROTECTIVE:
            for sector in (512, 4096):
                header = head[sector : sector + 92]
                if header[:8] == GPT_SIGNATURE:
                    backup = struct.unpack_from("<Q", header, 32)[0]
                    end = max(end, (backup + 1) * sector)
                    break
            else:
                end = max(end, (first + count) * SECTOR)
            continue
        end = max(end, (first + count) * SECTOR)
    return end or None


@dataclass(frozen=True)
class VolumeLocation:
    """Where an NTFS volume sits inside an image."""

    partition: int | None  # index in the partition table, None for a bare volume
    offset: int  # byte offset of the volume's boot sector
    length: int | None  # bytes, when the partition table says
    description: str


class Image:
    """A read-only image or device.

    ``Image(path)`` opens it; use as a context manager. ``volumes()`` lists the
    NTFS volumes, ``open_volume(location)`` gives a :class:`Volume`.
    """

    def __init__(self, source: str | os.PathLike | ImageInput):
        self.input = source if isinstance(source, ImageInput) else ImageInput(os.fspath(source))
        self.path = self.input.path
        self.kind, self.segments = image_segments(self.path)
        self._scratch: tempfile.TemporaryDirectory | None = None
        self._saved_handlers: dict[int, object] = {}
        self._raw_fd: int | None = None  # a read-only descriptor for bulk reads of flat images
        try:
            if self.kind == "gzip":
                flat = self._expand_gzip(self.path)
                self._img = pytsk3.Img_Info(flat)
                self._raw_fd = os.open(flat, os.O_RDONLY)
            elif self.kind == "raw":
                self._img = pytsk3.Img_Info(self.path)
                self._raw_fd = os.open(self.path, os.O_RDONLY)
            elif self.kind == "split":
                self._img = _SegmentedImage(self.segments)
            elif self.kind in disks.KINDS:
                disk = disks.VirtualDisk(self.path, self.kind, self.input.parents)
                self.segments = disk.chain
                self._img = _VirtualDiskImage(disk)
            else:
                self._img = _EwfImage(self.segments)
        except ImageError:
            self._remove_scratch()
            raise
        except (IOError, OSError, RuntimeError) as exc:
            self._remove_scratch()
            raise ImageError(f"cannot open image {self.path}: {_one_line(exc)}") from None
        self.size = self._img.get_size()

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        closer = getattr(self._img, "close", None)
        if closer:
            closer()
        if self._raw_fd is not None:
            os.close(self._raw_fd)
            self._raw_fd = None
        self._remove_scratch()

    # --- a compressed image, expanded to a private temporary file ------------------

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        for signum, previous in self._saved_handlers.items():
            signal.signal(signum, previous)
        self._saved_handlers = {}

    def _guard_scratch(self) -> None:
        """Remove the expanded image on SIGTERM and SIGHUP too (SIGINT unwinds
        through close()), then let the signal do what it would have done."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._saved_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        previous = self._saved_handlers.get(signum, signal.SIG_DFL)
        self._remove_scratch()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            os.kill(os.getpid(), signum)

    def _expand_gzip(self, path: str) -> str:
        """A gzip-compressed image (the bundled samples) is expanded to a private
        temporary file, removed on close (and on SIGTERM, SIGHUP); the compressed
        file is only read. Its first sectors must hold a partition table or an NTFS
        boot sector, and only the size they state is expanded (bytes past it belong
        to no volume), at most ``max_expand``: a gzip bomb ends at once."""
        limit = self.input.max_expand
        try:
            with gzip.open(path, "rb") as src:
                head = src.read(HEAD_BYTES)
                stated = stated_image_size(head)
                if stated is None:
                    raise ImageError(f"{path}: its first sectors hold neither a partition table nor an NTFS "
                                     "boot sector: not expanded")
                if stated > limit:
                    raise ImageError(f"{path} states {stated:,} bytes, more than --max-expand {limit:,}: not "
                                     "expanded (raise --max-expand, or decompress it yourself)")
                self._scratch = tempfile.TemporaryDirectory(prefix="aclscan-")
                self._guard_scratch()
                target = os.path.join(self._scratch.name, "image.raw")
                with open(target, "wb") as dst:
                    dst.write(head[:stated])
                    left = stated - min(len(head), stated)
                    while left > 0:
                        chunk = src.read(min(EXPAND_CHUNK, left))
                        if not chunk:
                            break
                        dst.write(chunk)
                        left -= len(chunk)
        except ImageError:
            self._remove_scratch()
            raise
        except (OSError, EOFError, zlib.error) as exc:
            self._remove_scratch()
            raise ImageError(f"cannot decompress {path}: {_one_line(exc)}") from None
        return target

    def how_to_write(self) -> str:
        """What to do to get a target ``fix`` can write, for an image that is not one."""
        if self.kind in disks.KINDS:
            return f"convert it to raw first: {disks.convert_command(self.kind, self.path)}"
        return "fix a raw image or a device (decompress it first)"

    def read(self, offset: int, size: int) -> bytes:
        try:
            return self._img.read(offset, size)
        except (IOError, OSError) as exc:
            raise ImageError(f"cannot read {size} bytes at {offset}: {_one_line(exc)}") from None

    def read_into(self, offset: int, target: memoryview) -> None:
        """Fill ``target`` with the image bytes at ``offset`` (one copy, no allocation
        for flat images); raises ImageError on a short read."""
        want = len(target)
        if self._raw_fd is not None:
            done = 0
            while done < want:
                got = os.preadv(self._raw_fd, [target[done:]], offset + done)
                if got <= 0:
                    break
                done += got
        else:
            data = self.read(offset, want)
            done = len(data)
            target[:done] = data
        if done != want:
            raise ImageError(f"short read: {done} of {want} bytes at offset {offset} (truncated image?)")

    def partitions(self) -> list[VolumeLocation]:
        """Every partition in the image's partition table (MBR or GPT); empty if none."""
        try:
            table = pytsk3.Volume_Info(self._img)
        except (IOError, OSError, RuntimeError):
            return []
        block = table.info.block_size
        found = []
        index = 0
        for part in table:
            if not part.flags & pytsk3.TSK_VS_PART_FLAG_ALLOC:
                continue
            desc = part.desc.decode("utf-8", "replace") if isinstance(part.desc, bytes) else str(part.desc)
            found.append(VolumeLocation(index, part.start * block, part.len * block, desc))
            index += 1
        return found

    def volumes(self) -> list[VolumeLocation]:
        """The NTFS volumes: every NTFS partition, or the whole image if it is one."""
        if self._is_ntfs_at(0):
            return [VolumeLocation(None, 0, self.size, "NTFS volume (no partition table)")]
        return [p for p in self.partitions() if self._is_ntfs_at(p.offset)]

    def locate(self, *, partition: int | None = None, offset: int | None = None) -> list[VolumeLocation]:
        """The volumes a scan should cover given the user's ``--partition``/``--offset``."""
        if offset is not None:
            if not self._is_ntfs_at(offset):
                raise NotNTFS(f"no NTFS volume at byte offset {offset} of {self.path}")
            return [VolumeLocation(None, offset, None, "NTFS volume at a given offset")]
        if partition is not None:
            parts = self.partitions()
            if not 0 <= partition < len(parts):
                raise NotFound(f"no partition {partition} in {self.path} ({len(parts)} partitions)")
            chosen = parts[partition]
            if not self._is_ntfs_at(chosen.offset):
                raise NotNTFS(f"partition {partition} of {self.path} is not NTFS ({chosen.description})")
            return [chosen]
        found = self.volumes()
        if not found:
            raise NotNTFS(f"no NTFS volume found in {self.path}")
        return found

    def _is_ntfs_at(self, offset: int) -> bool:
        head = self.read(offset, 16) if offset + 16 <= self.size else b""
        return head[3:11] == b"NTFS    "

    def open_volume(self, location: VolumeLocation) -> "Volume":
        return Volume(self, location)


class Volume:
    """One NTFS volume of an image, read with the project's own NTFS parsers.

    The boot sector gives the geometry and where `$MFT` starts; `$MFT`'s record 0
    gives its own run list (and, through its `$ATTRIBUTE_LIST`, the extents held
    in extension records). Every other record is read through that run list, so
    any cluster size Windows writes (512 bytes to 2 MiB) opens, whatever The
    Sleuth Kit supports.
    """

    def __init__(self, image: Image, location: VolumeLocation):
        self.image = image
        self.location = location
        try:
            self.boot = BootSector.from_bytes(image.read(location.offset, 512))
            self._check_geometry()
            self._mft_size, self._mft_spans = self._load_mft()
            # Names are compared through $UpCase; a volume without a readable one (a
            # truncated image, a wrecked $MFT) is refused, as The Sleuth Kit refuses it.
            self._upcase = UpCase.from_bytes(self.read_attribute(MFT_ENTRY_UPCASE, ATTR_TYPE_DATA))
        except Error as exc:
            raise NotNTFS(
                f"cannot open the NTFS volume at offset {location.offset} of {image.path}: {_one_line(exc)}"
            ) from None

    def _check_geometry(self) -> None:
        boot = self.boot
        for what, size in (("MFT record", boot.mft_record_size), ("index buffer", boot.index_record_size)):
            if size < 512 or size > 1 << 16 or size & (size - 1):
                raise NotNTFS(f"the boot sector states an impossible {what} size ({size} bytes)")
        if self.cluster_size > 1 << 21:
            raise NotNTFS(f"the boot sector states clusters of {self.cluster_size} bytes (at most 2 MiB)")

    def boot_sector(self) -> bytes:
        return self.image.read(self.location.offset, 512)

    @property
    def cluster_size(self) -> int:
        return self.boot.cluster_size

    # --- $MFT --------------------------------------------------------------------

    def _load_mft(self) -> tuple[int, list[tuple[int, int | None, int]]]:
        """`$MFT`'s `$DATA` run list from record 0, following its `$ATTRIBUTE_LIST`:
        extension records are read through the extents already known."""
        record_size = self.boot.mft_record_size
        where = self.location.offset + self.boot.mft_lcn * self.cluster_size
        record = parse_record(bytearray(self.image.read(where, record_size)), MFT_ENTRY_MFT, record_size)
        extents = [a for a in record.find(ATTR_TYPE_DATA) if not a.is_resident]
        if not extents:
            raise CorruptRecord("$MFT has no non-resident $DATA")
        listed = record.find(ATTR_TYPE_ATTRIBUTE_LIST)
        if listed:
            self._mft_size, self._mft_spans = self._spans_or_partial(extents)
            wanted = [e for e in parse_attribute_list(self._value(listed[0]))
                      if e.type == ATTR_TYPE_DATA and e.name == "" and e.entry != MFT_ENTRY_MFT]
            for item in sorted(wanted, key=lambda e: e.lowest_vcn):
                extension = self.record(item.entry)
                extents += [a for a in extension.find(ATTR_TYPE_DATA) if not a.is_resident]
                self._mft_size, self._mft_spans = self._spans_or_partial(extents)
        return stream_extents(sorted(extents, key=lambda a: a.lowest_vcn), self.cluster_size, self.location.offset)

    def _spans_or_partial(self, extents):
        """The spans of the extents known so far (enough to reach the next extension record)."""
        ordered = sorted(extents, key=lambda a: a.lowest_vcn)
        size, spans = ordered[0].data_size, []
        vcn_bytes = 0
        for extent in ordered:
            for lcn, count in extent.runs:
                length = count * self.cluster_size
                where = None if lcn is None else self.location.offset + lcn * self.cluster_size
                spans.append((vcn_bytes, where, length))
                vcn_bytes += length
        return size, spans

    def mft_size(self) -> int:
        """Bytes in the `$MFT` `$DATA` stream."""
        return self._mft_size

    def mft_runs(self) -> tuple[int, list[tuple[int, int | None, int]]]:
        """`$MFT`'s `$DATA` as (size, [(stream offset, image offset or None, length)]).

        Offsets are bytes; None marks a sparse run or one past the initialized
        size (it reads as zeros). Extents in extension records (a very
        fragmented MFT, listed in `$MFT`'s `$ATTRIBUTE_LIST`) are included.
        """
        return self._mft_size, list(self._mft_spans)

    def record(self, entry: int) -> FileRecord:
        """MFT record ``entry``, parsed (raises CorruptRecord, NotFound)."""
        record_size = self.boot.mft_record_size
        start = entry * record_size
        if entry < 0 or start + record_size > self._mft_size:
            raise NotFound(f"MFT entry {entry} is past the end of $MFT")
        data = self._read_spans(self._mft_spans, start, record_size)
        return parse_record(bytearray(data), entry, record_size)

    def iter_mft(
        self, chunk_size: int, piece_size: int = 1 << 16
    ) -> Iterator[tuple[int, bytearray, list[tuple[int, int]]]]:
        """The `$MFT` stream in chunks: (stream offset, writable bytes, unreadable ranges).

        Reads the image directly along `$MFT`'s run list, a chunk at a time, into
        one reused buffer (valid until the next chunk) the parser may change in
        place; sparse runs read as zeros. A piece that cannot be read
        (a truncated image, a bad sector) comes back as zeros (free records) and
        its (start, end) stream range is listed, so the walk goes on.
        """
        size, runs = self.mft_runs()
        # One buffer for the whole walk: a chunk is valid until the next is asked for.
        whole = bytearray(min(chunk_size, size))
        for start in range(0, size, chunk_size):
            end = min(start + chunk_size, size)
            buffer = whole if end - start == len(whole) else bytearray(end - start)
            view = memoryview(buffer)
            bad: list[tuple[int, int]] = []
            for run_start, where, length in runs:
                low, high = max(start, run_start), min(end, run_start + length)
                if low >= high:
                    continue
                if where is None:  # sparse, or past the initialized size
                    view[low - start : high - start] = bytes(high - low)
                    continue
                self._read_span(view, start, low, high, where - run_start, piece_size, bad)
            yield start, buffer, bad

    def _read_span(self, view, chunk_start, low, high, shift, piece_size, bad) -> None:
        """Read stream bytes low..high (image offset = stream offset + shift) into view."""
        try:
            self.image.read_into(low + shift, view[low - chunk_start : high - chunk_start])
            return
        except ImageError:
            pass
        for piece in range(low, high, piece_size):
            piece_end = min(piece + piece_size, high)
            try:
                self.image.read_into(piece + shift, view[piece - chunk_start : piece_end - chunk_start])
            except ImageError:
                view[piece - chunk_start : piece_end - chunk_start] = bytes(piece_end - piece)
                if bad and bad[-1][1] == piece:
                    bad[-1] = (bad[-1][0], piece_end)
                else:
                    bad.append((piece, piece_end))

    # --- attributes ----------------------------------------------------------------

    def _extents(self, entry: int, attr_type: int, name: str) -> list[AttributeRecord]:
        """Every extent of one attribute of a file, in VCN order, following the
        base record's `$ATTRIBUTE_LIST` into extension records."""
        base = self.record(entry)
        listed = base.find(ATTR_TYPE_ATTRIBUTE_LIST)
        if not listed:
            found = base.find(attr_type, name)
        else:
            found = []
            homes = {}
            for item in parse_attribute_list(self._value(listed[0])):
                if item.type == attr_type and item.name == name:
                    homes.setdefault(item.entry, []).append(item.attribute_id)
            for home, ids in homes.items():
                holder = base if home == entry else self.record(home)
                if holder is not base and holder.base_entry != entry:
                    raise CorruptRecord(f"MFT record {home} is listed by record {entry} but belongs to another file")
                found += [a for a in holder.find(attr_type, name) if a.attribute_id in ids]
        if not found:
            label = f"{attr_type:#x}" + (f":{name}" if name else "")
            raise NotFound(f"attribute {label} not found in MFT entry {entry}")
        return sorted(found, key=lambda a: a.lowest_vcn)

    def _value(self, attribute: AttributeRecord, extents: list[AttributeRecord] | None = None) -> bytes:
        if attribute.is_resident:
            return attribute.value
        extents = extents or [attribute]
        if attribute.is_encrypted:
            raise ImageError(f"attribute {attribute.type:#x} is encrypted (EFS): its bytes cannot be read")
        if attribute.is_compressed:
            return self._compressed_value(extents)
        size, spans = stream_extents(extents, self.cluster_size, self.location.offset)
        return self._read_spans(spans, 0, size)

    def _compressed_value(self, extents: list[AttributeRecord]) -> bytes:
        """An NTFS-compressed attribute, one compression unit at a time (aclscan.ntfs.lznt1)."""
        first, cluster = extents[0], self.cluster_size
        if not first.compression_unit:
            raise CorruptRecord(f"compressed attribute {first.type:#x} without a compression unit size")
        per_unit = 1 << first.compression_unit
        runs = []
        for extent in extents:
            vcn = extent.lowest_vcn
            for lcn, count in extent.runs:
                runs.append((vcn, lcn, count))
                vcn += count
        out = bytearray()
        size = first.data_size
        for unit_vcn in range(0, -(-size // cluster), per_unit):
            clusters = lznt1.unit_clusters(runs, unit_vcn, per_unit)
            stored = b"".join(self.image.read(self.location.offset + lcn * cluster, cluster)
                              for lcn in clusters if lcn is not None)
            if not stored:
                out += bytes(per_unit * cluster)
            elif len(stored) == per_unit * cluster:
                out += stored  # this unit did not compress: stored as it is
            else:
                unit = lznt1.decompress(stored, per_unit * cluster)
                out += unit + bytes(per_unit * cluster - len(unit))
        return bytes(out[:size])

    def _read_spans(self, spans, offset: int, length: int) -> bytes:
        """Bytes offset..offset+length of a stream laid out as ``spans``."""
        out = bytearray(length)
        view = memoryview(out)
        for start, where, span_length in spans:
            low, high = max(offset, start), min(offset + length, start + span_length)
            if low >= high or where is None:
                continue
            self.image.read_into(where + low - start, view[low - offset : high - offset])
        return bytes(out)

    def read_attribute(self, entry: int, attr_type: int, name: str = "") -> bytes:
        """The whole value of one attribute (resident or not) of an MFT entry."""
        extents = self._extents(entry, attr_type, name)
        return self._value(extents[0], extents)

    def read_sds(self) -> bytes:
        """`$Secure:$SDS`, the shared security descriptor stream of NTFS 3.x."""
        return self.read_attribute(MFT_ENTRY_SECURE, ATTR_TYPE_DATA, "$SDS")

    # --- paths ---------------------------------------------------------------------

    def lookup(self, directory: int, name: str) -> int:
        """The MFT entry of ``name`` in directory ``directory`` (case-insensitive,
        through the directory's B-tree of names)."""
        upcase = self._upcase
        wanted = upcase.index_key(name)
        try:
            root = parse_index_root(self.read_attribute(directory, ATTR_TYPE_INDEX_ROOT, FILE_NAME_INDEX))
        except NotFound:
            raise NotFound(f"MFT entry {directory} is not a directory") from None
        entries = root.entries
        allocation: list[tuple[int, int | None, int]] | None = None
        for _depth in range(MAX_INDEX_DEPTH):
            subnode = None
            for item in entries:
                if not item.is_end:
                    key = upcase.index_key(item.name)
                    if key == wanted:
                        return item.entry
                    if key < wanted:
                        continue
                subnode = item.subnode_vcn
                break
            if subnode is None:
                break
            if allocation is None:
                extents = self._extents(directory, ATTR_TYPE_INDEX_ALLOCATION, FILE_NAME_INDEX)
                allocation = stream_extents(extents, self.cluster_size, self.location.offset)[1]
            # VCNs count clusters, or sectors where an index buffer is smaller than a cluster.
            unit = self.cluster_size if root.block_size >= self.cluster_size else self.boot.bytes_per_sector
            block = bytearray(self._read_spans(allocation, subnode * unit, root.block_size))
            entries = parse_index_block(block, root.block_size)
        raise NotFound(f"no {name!r} in directory entry {directory}")

    def open_path(self, path: str) -> bytes:
        """A file's unnamed data stream by path (for hives); names are matched as
        Windows matches them (case-insensitive through `$UpCase`)."""
        entry = MFT_ENTRY_ROOT
        try:
            for part in (p for p in path.split("/") if p):
                entry = self.lookup(entry, part)
            return self.read_attribute(entry, ATTR_TYPE_DATA)
        except NotFound:
            raise NotFound(f"no such file on the volume: {path}") from None
        except CorruptRecord as exc:
            raise ImageError(f"cannot read {path} on the volume: {exc}") from None


_TSK_LOCATION = re.compile(r"^\w+: \(tsk3\.cpp:\d+\) ")


def _one_line(exc: BaseException) -> str:
    """An exception as one line, without pytsk3's source-location prefix."""
    text = _TSK_LOCATION.sub("", " ".join(str(exc).split()))
    return text or exc.__class__.__name__
