"""What aclscan accepts as an input file: a regular file or a block device.

A named pipe, a character device (/dev/zero), a socket or a directory is refused
before anything opens it, because reading one may block or never end. Every
reader of user-named files (images, domain exports) asks here first.
"""

from __future__ import annotations

import os
import stat

from aclscan.errors import Error

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def check_input_file(path: str | os.PathLike, what: str, error: type[Error], *,
                     devices: bool = True) -> os.stat_result:
    """``path``'s stat when it is a regular file (or, with ``devices``, a block
    device); otherwise raise ``error`` with one line naming what it is."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise error(f"cannot read {what} {os.fspath(path)}: {exc.strerror or exc}") from None
    if stat.S_ISREG(info.st_mode) or (devices and stat.S_ISBLK(info.st_mode)):
        return info
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "a special file")
    wanted = "a regular file or block device" if devices else "a regular file"
    raise error(f"{what} {os.fspath(path)} is {kind}, not {wanted}")
