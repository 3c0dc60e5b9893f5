"""The image layer: the only module that touches pytsk3 (and libewf).

It opens an image read-only (raw/dd, split raw ``.001 .002 ...``, E01 sets,
block devices), finds the NTFS volumes in it (whole-disk images with MBR or GPT
partition tables, or a bare volume) and hands out byte streams: the `$MFT`, the
`$Secure:$SDS` stream, an attribute of any record, a file by path. Everything
above this module works on bytes.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from typing import Iterator

import pytsk3

from aclscan.errors import ImageError, NotFound, NotNTFS

# $SECURITY_DESCRIPTOR and $DATA attribute type codes (MS names in the NTFS docs).
ATTR_TYPE_DATA = 0x80
ATTR_TYPE_SECURITY_DESCRIPTOR = 0x50
MFT_ENTRY_MFT = 0
MFT_ENTRY_SECURE = 9

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


def _bisect_right(values: list[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def image_segments(path: str | os.PathLike) -> tuple[str, list[str]]:
    """Return the image kind ('raw', 'split', 'ewf') and its ordered segment files."""
    text = os.fspath(path)
    if not os.path.exists(text):
        raise ImageError(f"image not found: {text}")
    if text.lower().endswith(".gz"):
        return "gzip", [text]
    if _EWF_RE.search(text):
        import pyewf

        return "ewf", sorted(pyewf.glob(text))
    match = _SPLIT_RE.match(text)
    if match and os.path.isfile(text):
        siblings = sorted(glob.glob(glob.escape(match["stem"]) + ".[0-9][0-9][0-9]"))
        if len(siblings) > 1:
            return "split", siblings
    return "raw", [text]


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

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.kind, self.segments = image_segments(path)
        self._scratch: tempfile.TemporaryDirectory | None = None
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
            else:
                self._img = _EwfImage(self.segments)
        except (IOError, OSError, RuntimeError) as exc:
            if self._scratch is not None:
                self._scratch.cleanup()
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
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def _expand_gzip(self, path: str) -> str:
        """A gzip-compressed image (the bundled samples) is expanded to a private
        temporary file, removed on close; the compressed file is only read."""
        self._scratch = tempfile.TemporaryDirectory(prefix="aclscan-")
        target = os.path.join(self._scratch.name, "image.raw")
        try:
            with gzip.open(path, "rb") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            self._scratch.cleanup()
            raise ImageError(f"cannot decompress {path}: {_one_line(exc)}") from None
        return target

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
    """One NTFS volume of an image, read through The Sleuth Kit."""

    def __init__(self, image: Image, location: VolumeLocation):
        self.image = image
        self.location = location
        try:
            self._fs = pytsk3.FS_Info(image._img, offset=location.offset)
        except (IOError, OSError, RuntimeError) as exc:
            raise NotNTFS(
                f"cannot open the NTFS volume at offset {location.offset} of {image.path}: {_one_line(exc)}"
            ) from None
        if self._fs.info.ftype not in (pytsk3.TSK_FS_TYPE_NTFS, pytsk3.TSK_FS_TYPE_NTFS_DETECT):
            raise NotNTFS(f"the volume at offset {location.offset} is not NTFS")

    def boot_sector(self) -> bytes:
        return self.image.read(self.location.offset, 512)

    @property
    def cluster_size(self) -> int:
        return self._fs.info.block_size

    def _open_meta(self, entry: int):
        try:
            return self._fs.open_meta(inode=entry)
        except (IOError, OSError, RuntimeError) as exc:
            raise NotFound(f"MFT entry {entry} cannot be opened: {_one_line(exc)}") from None

    def mft_size(self) -> int:
        """Bytes in the `$MFT` `$DATA` stream."""
        return self._attribute_size(self._open_meta(MFT_ENTRY_MFT), ATTR_TYPE_DATA, "")

    def mft_runs(self) -> tuple[int, list[tuple[int, int | None, int]]]:
        """`$MFT`'s `$DATA` as (size, [(stream offset, image offset or None, length)]).

        Offsets are bytes; None marks a sparse run or one past the initialized
        size (it reads as zeros). The run list is The Sleuth Kit's, so an
        `$ATTRIBUTE_LIST` on `$MFT` itself (a very fragmented MFT) is followed.
        """
        handle = self._open_meta(MFT_ENTRY_MFT)
        attr = self._find_attribute(handle, ATTR_TYPE_DATA, "")
        size = attr.info.size
        initialized = getattr(attr.info, "initsize", size) or size
        cluster = self.cluster_size
        runs: list[tuple[int, int | None, int]] = []
        sparse = pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE | pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER
        for run in attr:
            start = run.offset * cluster
            length = min(run.len * cluster, size - start)
            if length <= 0:
                continue
            if int(run.flags) & sparse:
                runs.append((start, None, length))
                continue
            where = self.location.offset + run.addr * cluster
            live = max(0, min(length, initialized - start))
            if live:
                runs.append((start, where, live))
            if live < length:
                runs.append((start + live, None, length - live))
        runs.sort()
        covered = sum(length for _s, _w, length in runs)
        if covered != size:
            raise ImageError(f"$MFT run list covers {covered} of {size} bytes")
        return size, runs

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

    def read_attribute(self, entry: int, attr_type: int, name: str = "") -> bytes:
        """The whole value of one attribute (resident or not) of an MFT entry."""
        handle = self._open_meta(entry)
        attr = self._find_attribute(handle, attr_type, name)
        return self._read_attribute(handle, attr, 0, attr.info.size)

    def read_sds(self) -> bytes:
        """`$Secure:$SDS`, the shared security descriptor stream of NTFS 3.x."""
        return self.read_attribute(MFT_ENTRY_SECURE, ATTR_TYPE_DATA, "$SDS")

    def open_path(self, path: str) -> bytes:
        """A file's unnamed data stream by path (for hives)."""
        try:
            handle = self._fs.open(path)
        except (IOError, OSError, RuntimeError):
            raise NotFound(f"no such file on the volume: {path}") from None
        attr = self._find_attribute(handle, ATTR_TYPE_DATA, "")
        return self._read_attribute(handle, attr, 0, attr.info.size)

    @staticmethod
    def _find_attribute(handle, attr_type: int, name: str):
        for attr in handle:
            raw_name = attr.info.name or b""
            attr_name = raw_name.decode("utf-8", "replace") if isinstance(raw_name, bytes) else raw_name
            if int(attr.info.type) == attr_type and attr_name == name:
                return attr
        label = f"{attr_type:#x}" + (f":{name}" if name else "")
        raise NotFound(f"attribute {label} not found")

    def _attribute_size(self, handle, attr_type: int, name: str) -> int:
        return self._find_attribute(handle, attr_type, name).info.size

    @staticmethod
    def _read_attribute(handle, attr, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            data = handle.read_random(offset, length, attr.info.type, attr.info.id)
        except (IOError, OSError, RuntimeError) as exc:
            raise ImageError(f"cannot read attribute data: {_one_line(exc)}") from None
        if len(data) != length:
            raise ImageError(f"short read: {len(data)} of {length} bytes (truncated image?)")
        return data


_TSK_LOCATION = re.compile(r"^\w+: \(tsk3\.cpp:\d+\) ")


def _one_line(exc: BaseException) -> str:
    """An exception as one line, without pytsk3's source-location prefix."""
    text = _TSK_LOCATION.sub("", " ".join(str(exc).split()))
    return text or exc.__class__.__name__
