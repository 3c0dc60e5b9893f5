"""Test-only: virtual machine disks made from raw volumes with qemu-img (Debian
qemu-utils), and a chain of linked clones (a template and children that each add
a file with its own descriptor through ntfs-3g).

qemu-nbd is not used (no nbd module here): a child is a raw copy of the template,
changed through an ntfs-3g mount; the pieces that differ from the template are
then written with qemu-io into a qcow2 whose backing file is the template, so the
child holds only its differences, as a linked clone does.
``sample_volumes/make_vm_disks.py`` is the command-line front end.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# name -> (qemu-img output format, extra options, file suffix)
FORMATS = {
    "vhd": ("vpc", [], ".vhd"),  # dynamic
    "vhd-fixed": ("vpc", ["-o", "subformat=fixed"], ".vhd"),
    "vhdx": ("vhdx", [], ".vhdx"),  # dynamic
    "vhdx-fixed": ("vhdx", ["-o", "subformat=fixed"], ".vhdx"),
    "vmdk": ("vmdk", [], ".vmdk"),  # monolithic sparse
    "vmdk-split": ("vmdk", ["-o", "subformat=twoGbMaxExtentSparse"], ".vmdk"),
    "vmdk-flat": ("vmdk", ["-o", "subformat=monolithicFlat"], ".vmdk"),
    "vmdk-stream": ("vmdk", ["-o", "subformat=streamOptimized"], ".vmdk"),
    "qcow2": ("qcow2", [], ".qcow2"),
    "qcow2-compressed": ("qcow2", ["-c"], ".qcow2"),
}
MAIN_FORMATS = ("vhd", "vhdx", "vmdk", "qcow2")


def qemu_img(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, cwd=cwd)


def expand(image: Path, directory: Path) -> Path:
    """A raw copy of ``image`` (a .img.gz sample, or raw already) in ``directory``."""
    if image.suffix != ".gz":
        return image
    target = directory / image.name[: -len(".gz")].replace(".img", ".raw")
    if not target.exists():
        with gzip.open(image, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return target


def convert(raw: Path, directory: Path, name: str) -> Path:
    """``raw`` written as format ``name`` (a key of FORMATS) in ``directory``."""
    output_format, options, suffix = FORMATS[name]
    target = directory / f"{raw.stem}.{name}{suffix}"
    if not target.exists():
        qemu_img("convert", "-O", output_format, *options, str(raw), str(target))
    return target


@dataclass(frozen=True)
class AddedFile:
    path: str  # on the volume, "/"-separated, no leading "/"
    data: bytes
    sd: bytes  # self-relative descriptor set through system.ntfs_acl


@dataclass(frozen=True)
class Clone:
    disk: Path  # the child's qcow2 (backing file: the template's qcow2)
    added: AddedFile
    sd_read_back: bytes  # what ntfs-3g returned for the added file after setting it


PIECE = 1 << 16


def write_differences(base: Path, changed: Path, overlay: Path) -> int:
    """Write into ``overlay`` (a qcow2 over ``base``) every 64 KiB piece where
    ``changed`` differs from ``base``; returns the pieces written."""
    commands = []
    pieces = overlay.parent / f"{overlay.stem}.pieces"
    pieces.mkdir()
    with open(base, "rb") as old, open(changed, "rb") as new:
        offset = 0
        while True:
            before, after = old.read(PIECE), new.read(PIECE)
            if not after:
                break
            if before != after:
                piece = pieces / f"{offset:016x}"
                piece.write_bytes(after)
                commands += ["-c", f"write -q -s {piece} {offset} {len(after)}"]
            offset += len(after)
    if commands:
        subprocess.run(["qemu-io", "-f", "qcow2", *commands, str(overlay)], check=True, capture_output=True)
    shutil.rmtree(pieces)
    return len(commands) // 2


def linked_clones(template_raw: Path, directory: Path, children: dict[str, AddedFile]) -> tuple[Path, dict[str, Clone]]:
    """The template as qcow2, and per child a qcow2 backed by it holding the
    child's added file. Needs ntfs-3g and FUSE."""
    from aclscan.fix import ntfs3g

    template = directory / "template.qcow2"
    qemu_img("convert", "-O", "qcow2", str(template_raw), str(template))
    made = {}
    for name, added in children.items():
        scratch = directory / f"{name}.raw"
        shutil.copyfile(template_raw, scratch)
        with ntfs3g.mounted(scratch) as root:
            target = root / added.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(added.data)
            ntfs3g.set_ntfs_acl(target, added.sd)
            read_back = ntfs3g.get_ntfs_acl(target)
        disk = directory / f"{name}.qcow2"
        # The child records the template by its name, relative to the child's folder,
        # and holds only what differs: written through qemu-io, one changed piece at a time.
        qemu_img("create", "-q", "-f", "qcow2", "-b", template.name, "-F", "qcow2", disk.name, cwd=directory)
        write_differences(template_raw, scratch, disk)
        scratch.unlink()
        made[name] = Clone(disk, added, read_back)
    return template, made


# --- a differencing VHD, written by hand (qemu-img makes none) ------------------------
# Layout (Microsoft's "Virtual Hard Disk Image Format Specification"): a 512-byte footer
# at the end (a copy at the start of a dynamic disk), a dynamic disk header, the block
# allocation table (BAT: the sector where each block starts, 0xFFFFFFFF unused), then
# blocks, each a sector bitmap (bit set: the sector is in this disk, not the parent's)
# followed by the block's sectors. Big-endian throughout.

VHD_DISK_TYPE = 60
VHD_CHECKSUM = 64
VHD_UNIQUE_ID = 68
DYNAMIC_TABLE_OFFSET = 16
DYNAMIC_BLOCK_SIZE = 32
DYNAMIC_CHECKSUM = 36
DYNAMIC_PARENT_ID = 40
DYNAMIC_PARENT_NAME = 64
VHD_DIFFERENCING = 4
UNUSED = 0xFFFFFFFF


def _ones_complement_sum(data: bytes) -> int:
    return ~sum(data) & 0xFFFFFFFF


def _with_checksum(structure: bytearray, at: int) -> bytes:
    structure[at : at + 4] = bytes(4)
    structure[at : at + 4] = _ones_complement_sum(structure).to_bytes(4, "big")
    return bytes(structure)


def differencing_vhd(parent: Path, child: Path, parent_name: str, base_raw: Path, changed_raw: Path | None) -> int:
    """Make ``child`` a differencing VHD of the dynamic VHD ``parent`` (recorded as
    ``parent_name``) holding the sectors where ``changed_raw`` differs from
    ``base_raw`` (the parent's content); returns the blocks written."""
    footer = bytearray(parent.read_bytes()[-512:])
    size = int.from_bytes(footer[48:56], "big")
    qemu_img("create", "-q", "-f", "vpc", str(child), str(size))
    data = bytearray(child.read_bytes())
    own = bytearray(data[:512])
    own[VHD_DISK_TYPE : VHD_DISK_TYPE + 4] = VHD_DIFFERENCING.to_bytes(4, "big")
    own = bytearray(_with_checksum(own, VHD_CHECKSUM))
    header = bytearray(data[512:1536])
    header[DYNAMIC_PARENT_ID : DYNAMIC_PARENT_ID + 16] = footer[VHD_UNIQUE_ID : VHD_UNIQUE_ID + 16]
    header[DYNAMIC_PARENT_NAME : DYNAMIC_PARENT_NAME + 512] = parent_name.encode("utf-16-be").ljust(512, b"\0")
    data[512:1536] = _with_checksum(header, DYNAMIC_CHECKSUM)
    table = int.from_bytes(header[DYNAMIC_TABLE_OFFSET : DYNAMIC_TABLE_OFFSET + 8], "big")
    block_size = int.from_bytes(header[DYNAMIC_BLOCK_SIZE : DYNAMIC_BLOCK_SIZE + 4], "big")
    body = data[:-512]  # the blocks go where the closing footer was
    written = 0
    if changed_raw is not None:
        old, new = base_raw.read_bytes(), changed_raw.read_bytes()
        for block in range(0, len(new), block_size):
            before, after = old[block : block + block_size], new[block : block + block_size]
            if before == after:
                continue
            bitmap = bytearray(512)
            for sector in range(0, len(after), 512):
                if after[sector : sector + 512] != before[sector : sector + 512]:
                    index = sector // 512
                    bitmap[index // 8] |= 0x80 >> (index % 8)
            entry = table + 4 * (block // block_size)
            body[entry : entry + 4] = (len(body) // 512).to_bytes(4, "big")
            body += bitmap + after.ljust(block_size, b"\0")
            written += 1
    body[:512] = own
    child.write_bytes(bytes(body) + bytes(own))
    return written
