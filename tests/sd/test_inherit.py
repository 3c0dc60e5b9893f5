"""Inheritance as Windows writes it: expected child descriptors spelled out in SDDL."""

import pytest

from aclscan.sd.inherit import child_descriptor, map_generic
from aclscan.sd.sddl import from_sddl, to_sddl

# The root of a Windows 10 system volume (as Windows writes it).
ROOT = (
    "O:SYG:SYD:PAI(A;OICIIO;SDGXGWGR;;;AU)(A;;0x1301bf;;;AU)(A;OICIIO;GA;;;SY)(A;;FA;;;SY)"
    "(A;OICI;0x1200a9;;;BU)(A;OICIIO;GA;;;BA)(A;;FA;;;BA)"
)
USER = "S-1-5-21-191058668-193157475-1542849698-1000"


def child(parent: str, explicit: str, is_dir: bool) -> str:
    return to_sddl(child_descriptor(from_sddl(parent), from_sddl(explicit), is_dir=is_dir))


def test_file_under_the_root_gets_effective_copies():
    # Windows: a new file at C:\ (owner BA) has exactly these inherited ACEs.
    assert child(ROOT, "O:BAG:SYD:", is_dir=False) == (
        "O:BAG:SYD:AI(A;ID;0x1301bf;;;AU)(A;ID;FA;;;SY)(A;ID;0x1200a9;;;BU)(A;ID;FA;;;BA)"
    )


def test_directory_under_the_root_splits_generic_aces():
    assert child(ROOT, "O:BAG:SYD:", is_dir=True) == (
        "O:BAG:SYD:AI(A;ID;0x1301bf;;;AU)(A;OICIIOID;SDGXGWGR;;;AU)(A;ID;FA;;;SY)(A;OICIIOID;GA;;;SY)"
        "(A;OICIID;0x1200a9;;;BU)(A;ID;FA;;;BA)(A;OICIIOID;GA;;;BA)"
    )


def test_creator_owner_becomes_the_owner():
    parent = "O:BAG:SYD:(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)"
    assert child(parent, f"O:{USER}G:SYD:", is_dir=False) == f"O:{USER}G:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;{USER})"
    assert child(parent, f"O:{USER}G:SYD:", is_dir=True) == (
        f"O:{USER}G:SYD:AI(A;OICIID;FA;;;SY)(A;ID;FA;;;{USER})(A;OICIIOID;GA;;;CO)"
    )


def test_explicit_aces_first_and_protected_inherits_nothing():
    parent = "O:BAG:SYD:(A;OICI;FA;;;SY)"
    assert child(parent, f"O:BAG:SYD:(A;;FA;;;{USER})", is_dir=False) == (
        f"O:BAG:SYD:AI(A;;FA;;;{USER})(A;ID;FA;;;SY)"
    )
    assert child(parent, f"O:BAG:SYD:P(A;OICI;FA;;;{USER})", is_dir=True) == f"O:BAG:SYD:P(A;OICI;FA;;;{USER})"


def test_no_propagate_and_object_only_inheritance():
    parent = "O:BAG:SYD:(A;CINP;FA;;;SY)(A;OI;FR;;;BU)(A;CI;FA;;;BA)"
    assert child(parent, "O:BAG:SYD:", is_dir=True) == (
        "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;OIIOID;FR;;;BU)(A;CIID;FA;;;BA)"
    )
    assert child(parent, "O:BAG:SYD:", is_dir=False) == "O:BAG:SYD:AI(A;ID;FR;;;BU)"
    # A grandchild file under that directory gets BU's read through the inherit-only ACE.
    directory = child(parent, "O:BAG:SYD:", is_dir=True)
    assert child(directory, "O:BAG:SYD:", is_dir=False) == "O:BAG:SYD:AI(A;ID;FR;;;BU)"


def test_mandatory_label_in_the_sacl_is_inherited():
    parent = "O:BAG:SYD:(A;OICI;FA;;;SY)S:(ML;OICI;NW;;;HI)"
    assert child(parent, "O:BAG:SYD:", is_dir=False) == "O:BAG:SYD:AI(A;ID;FA;;;SY)S:AI(ML;ID;NW;;;HI)"


@pytest.mark.parametrize("generic, specific", [(0x10000000, 0x1F01FF), (0x80000000, 0x120089),
                                               (0x40000000, 0x120116), (0x20000000, 0x1200A0),
                                               (0xE0010000, 0x1301BF)])
def test_generic_mapping(generic, specific):
    assert map_generic(generic) == specific
