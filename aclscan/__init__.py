"""aclscan: find and fix Windows ACLs broken by disk-image cloning."""

from aclscan.errors import (
    CorruptRecord,
    DatabaseError,
    Error,
    ImageError,
    MalformedData,
    MalformedDescriptor,
    MalformedSID,
    NotFound,
    NotNTFS,
    PartialScan,
    SDDLError,
)

__version__ = "0.1.0"

__all__ = [
    "CorruptRecord",
    "DatabaseError",
    "Error",
    "ImageError",
    "MalformedData",
    "MalformedDescriptor",
    "MalformedSID",
    "NotFound",
    "NotNTFS",
    "PartialScan",
    "SDDLError",
    "__version__",
]
