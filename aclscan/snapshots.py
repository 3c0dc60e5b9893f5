"""Volume Shadow Copies: earlier states of an NTFS volume, read with libvshadow.

A Windows volume with System Restore or backups keeps a catalog of shadow copy
stores; each store, read through libvshadow, is the whole volume as it was when the
store was made. aclscan reads a store as it reads the live volume (the same NTFS
readers, through :class:`StoreImage`, which offers the two read calls a
:class:`~aclscan.image.Volume` makes), so a scan can hold every state of a volume,
and the SAM each state kept is history the image keeps of itself.

Only this module imports pyvshadow.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

from aclscan.errors import Error, ImageError


class SnapshotError(Error):
    """A shadow copy catalog or store that cannot be read: recorded, the live volume is
    scanned all the same."""


@dataclass(frozen=True)
class Snapshot:
    """One shadow copy store of a volume."""

    index: int
    identifier: str  # the store's GUID
    created: str  # UTC, ISO 8601

    @property
    def label(self) -> str:
        return f"shadow copy {{{self.identifier}}} of {self.created[:16].replace('T', ' ')}"


class _VolumeBytes:
    """A file object over one volume of an image, for libvshadow (which reads the
    catalog at the volume's start and the stores' blocks wherever they are)."""

    def __init__(self, image, offset: int, length: int) -> None:
        self._image, self._offset, self._length, self._position = image, offset, length, 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._length - self._position
        size = max(0, min(size, self._length - self._position))
        if not size:
            return b""
        data = self._image.read(self._offset + self._position, size)
        self._position += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def get_size(self) -> int:
        return self._length


class StoreImage:
    """One shadow copy store, read like an image holding one bare NTFS volume."""

    def __init__(self, parent, store, snapshot: Snapshot) -> None:
        self.path = parent.path
        self.kind = "vss"
        self.snapshot = snapshot
        self._store = store
        self.size = store.volume_size

    def read(self, offset: int, size: int) -> bytes:
        try:
            return self._store.read_buffer_at_offset(size, offset)
        except (IOError, OSError) as exc:
            raise ImageError(f"{self.snapshot.label}: cannot read {size} bytes at {offset}: {exc}") from None

    def read_into(self, offset: int, target: memoryview) -> None:
        data = self.read(offset, len(target))
        if len(data) != len(target):
            raise ImageError(f"{self.snapshot.label}: short read at {offset}")
        target[:] = data


class ShadowCopies:
    """The shadow copy stores of one volume of an open image. Use as a context manager."""

    def __init__(self, image, location) -> None:
        import pyvshadow

        length = location.length or (image.size - location.offset)
        self._file = _VolumeBytes(image, location.offset, length)
        self._image = image
        self._volume = pyvshadow.volume()
        try:
            self._volume.open_file_object(self._file)
        except (IOError, OSError, RuntimeError) as exc:
            raise SnapshotError(f"the shadow copy catalog at offset {location.offset} cannot be read: "
                                f"{' '.join(str(exc).split())}") from None
        self.snapshots: list[Snapshot] = []
        for index in range(self._volume.number_of_stores):
            store = self._volume.get_store(index)
            created = store.get_creation_time()
            stamp = created.replace(tzinfo=_dt.timezone.utc).isoformat(timespec="seconds") if created else ""
            self.snapshots.append(Snapshot(index, str(store.identifier), stamp))

    def __enter__(self) -> "ShadowCopies":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._volume.close()
        except (IOError, OSError):
            pass

    def image_of(self, snapshot: Snapshot) -> StoreImage:
        return StoreImage(self._image, self._volume.get_store(snapshot.index), snapshot)


def has_catalog(image, location) -> bool:
    """Whether the volume carries a shadow copy catalog (libvshadow's own check)."""
    import pyvshadow

    length = location.length or (image.size - location.offset)
    try:
        return bool(pyvshadow.check_volume_signature_file_object(_VolumeBytes(image, location.offset, length)))
    except (IOError, OSError, RuntimeError):
        return False
