"""Windows security descriptors (MS-DTYP): SIDs, ACEs, ACLs, descriptors; binary and SDDL."""

from aclscan.sd.ace import ACE, COMPOUND_ACE_IMPERSONATE, AceFlags, AceType, ObjectAceFlags
from aclscan.sd.acl import ACL, ACL_REVISION, ACL_REVISION_DS
from aclscan.sd.descriptor import SECURITY_DESCRIPTOR_REVISION, Control, SecurityDescriptor
from aclscan.sd.sddl import (
    ace_from_sddl,
    ace_to_sddl,
    from_sddl,
    mask_from_sddl,
    mask_to_sddl,
    sid_from_sddl,
    sid_to_sddl,
    to_sddl,
)
from aclscan.sd.sid import SID

__all__ = [
    "ACE",
    "ACL",
    "ACL_REVISION",
    "ACL_REVISION_DS",
    "AceFlags",
    "AceType",
    "COMPOUND_ACE_IMPERSONATE",
    "Control",
    "ObjectAceFlags",
    "SECURITY_DESCRIPTOR_REVISION",
    "SID",
    "SecurityDescriptor",
    "ace_from_sddl",
    "ace_to_sddl",
    "from_sddl",
    "mask_from_sddl",
    "mask_to_sddl",
    "sid_from_sddl",
    "sid_to_sddl",
    "to_sddl",
]
