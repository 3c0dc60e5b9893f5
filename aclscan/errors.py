"""The one exception tree of aclscan.

Every error the library raises derives from :class:`Error`. Where a built-in
exception already names the kind of failure, the subclass inherits it too, so
callers that only know Python (``except ValueError``) still catch it. Each class
carries the process exit code the command line uses for it: the codes are a
documented contract (README, "Exit codes").
"""


class Error(Exception):
    """Root of every aclscan error."""

    # Exit code 1 is kept for "findings remain / not ready" and 2 for usage errors.
    exit_code = 9


class MalformedData(Error, ValueError):
    """Bytes (or text) that do not follow the structure they claim to be."""

    exit_code = 8


class MalformedSID(MalformedData):
    """A SID in binary or string form that is not valid."""


class MalformedDescriptor(MalformedData):
    """A security descriptor, ACL or ACE whose sizes, counts or offsets are wrong."""


class SDDLError(MalformedData):
    """SDDL text that cannot be parsed, or a descriptor SDDL cannot express."""


class CorruptRecord(MalformedData):
    """An MFT record that fails its signature, fixup or attribute checks."""


class NotFound(Error, KeyError):
    """A single lookup (record, security id, path, partition) that found nothing."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ImageError(Error, OSError):
    """The image or device cannot be opened or read."""

    exit_code = 4


class NotNTFS(ImageError):
    """The image (or the chosen partition) holds no NTFS volume."""

    exit_code = 4


class DatabaseError(Error):
    """A scan database that is missing, not aclscan's, or of a newer schema."""

    exit_code = 5


class PartialScan(Error):
    """A scan that finished but had to skip bad items (they are in ``scan_errors``)."""

    exit_code = 3


class ToolMissing(Error, FileNotFoundError):
    """An external program aclscan needs (ntfs-3g, mkntfs, losetup) or /dev/fuse is absent."""

    exit_code = 6


class MountError(Error, OSError):
    """ntfs-3g could not mount an image, or mkntfs could not format one."""

    exit_code = 7


class InvalidScenario(MalformedData):
    """A sample scenario whose definition is incomplete or contradicts itself."""


class DirectoryError(Error):
    """A domain's account list that cannot be had: an export that cannot be read, a
    directory URL or CA file that cannot be used. The subclasses say which step failed."""

    exit_code = 10


class MalformedExport(DirectoryError, MalformedData):
    """A domain export (LDIF, CSV) that does not follow its format; the message names the line."""

    exit_code = 11


class DirectoryUnreachable(DirectoryError, ConnectionError):
    """The directory server does not answer: connection refused, timed out, name unknown, no TLS."""

    exit_code = 12


class DirectoryAuthFailed(DirectoryError, PermissionError):
    """The directory refused the bind (invalidCredentials and the like)."""

    exit_code = 13


class UntrustedCertificate(DirectoryError):
    """The directory's TLS certificate is not trusted or not issued to the host named."""

    exit_code = 14


class DirectorySearchFailed(DirectoryError):
    """A directory search (root DSE, domain object, accounts) failed after the bind."""

    exit_code = 15


class HiveError(MalformedData):
    """A registry hive that cannot be read: not a hive, truncated, or its cells out of bounds."""


class WrongHive(HiveError):
    """A readable hive of another kind than the one asked for (SYSTEM given as the SAM)."""


class TargetMismatch(Error):
    """A fix or undo target that is not the scanned volume, has changed since the scan,
    cannot be written, or is mounted."""

    exit_code = 16


class HiveEditError(HiveError):
    """A hive edit that cannot be made (a key that exists already, a key with subkeys to delete,
    a name too long); nothing is changed."""


class DirtyHive(HiveEditError):
    """A hive whose base block says its transaction logs were not applied (sequence numbers
    differ, or its checksum is wrong): writing it would lose what the logs hold."""


class MissingHiveKey(HiveEditError, NotFound):
    """A key or value an edit names that the hive does not hold."""


class PlanMismatch(TargetMismatch):
    """A plan that disagrees with the scan it names: a descriptor whose new bytes are not
    the scanned original with the plan's actions applied, or an action the scan's
    findings do not call for. A plan is a file that travels; the fixer trusts the scan."""


class JournalWriteFailed(DatabaseError):
    """The fix journal could not be written (its disk is full, say): the fix stops; the
    message says how many files were already changed and how to undo them."""


class Interrupted(Error):
    """A fix or undo stopped by SIGTERM or SIGHUP, after unmounting and cleaning up.
    The exit code is the shell's for that signal: 128 + its number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class SchedulerUnreachable(Error, ConnectionError):
    """The Dask scheduler given to `fleet --scheduler` does not answer (refused, timed out,
    name unknown), or a local cluster could not be started."""

    exit_code = 17
