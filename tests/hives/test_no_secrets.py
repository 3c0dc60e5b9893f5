"""No password hash, key or LSA secret ever leaves the hive readers: no record has a
field for one, and none of the secret bytes of the real hives appears in what the
readers return. Assertion messages never show the bytes."""

from __future__ import annotations

import dataclasses
import pickle
import struct

import pytest

from aclscan.accounts.volume import VolumeHiveSource
from aclscan.hives import (
    LsaAccount,
    Profile,
    SamAlias,
    SamGroup,
    SamInfo,
    SamUser,
    SecurityInfo,
    Service,
    SoftwareInfo,
    SystemInfo,
    open_hive,
    read_sam,
    read_security,
)

SECRET_WORDS = ("hash", "password", "pwd", "lm", "nt", "secret", "key", "salt", "history", "cache")


def test_no_record_has_a_field_for_a_secret():
    for cls in (SamUser, SamGroup, SamAlias, SamInfo, LsaAccount, SecurityInfo, Service, SystemInfo, Profile,
                SoftwareInfo):
        for field in dataclasses.fields(cls):
            words = field.name.lower().split("_")
            assert not set(words) & set(SECRET_WORDS), f"{cls.__name__}.{field.name}"


def user_secrets(path) -> list[bytes]:
    """Entries 13-16 of every user's V (LM/NT hashes and histories) and the domain's key
    material (Account F from 0x68), as stored."""
    hive = open_hive(path)
    secrets = []
    users = hive.key("SAM\\Domains\\Account\\Users")
    for key in users.subkeys():
        v = key.value("V")
        if v is None:
            continue
        for index in range(13, 17):
            offset, length, _extra = struct.unpack_from("<III", v.raw, 12 * index)
            blob = v.raw[0xCC + offset : 0xCC + offset + length]
            if len(blob) >= 16:
                secrets.append(blob[-16:])  # the hash itself (after any header)
    f = hive.key("SAM\\Domains\\Account").value("F").raw
    secrets += [f[i : i + 16] for i in range(0x68, len(f) - 16, 16) if any(f[i : i + 16])]
    return secrets


def lsa_secrets(path) -> list[bytes]:
    hive = open_hive(path)
    found = []
    for top in ("Policy\\Secrets", "Cache", "Policy\\PolEKList"):
        stack = [hive.key(top)]
        while stack:
            key = stack.pop()
            if key is None:
                continue
            stack += key.subkeys()
            found += [v.raw[-16:] for v in key.values() if len(v.raw) >= 16 and any(v.raw[-16:])]
    return found


def leaks(output: object, secrets: list[bytes]) -> int:
    data = pickle.dumps(output) + repr(output).encode("utf-8", "backslashreplace")
    text = repr(output)
    return sum(1 for s in secrets if s in data or s.hex() in text or s.hex().upper() in text)


@pytest.mark.shared
@pytest.mark.parametrize("machine", ["studentpc8", "chitonsrv", "regipy"])
def test_real_sam_hashes_stay_in_the_hive(real_hive, machine):
    path = real_hive(f"{machine}-SAM")
    secrets = user_secrets(path)
    assert secrets, "the test found no hash entries to look for"
    assert leaks({"planted": secrets[0]}, secrets) >= 1  # the detector sees a planted one
    sam = read_sam(path)
    source = VolumeHiveSource(sam, None, None, None)
    outputs = [sam, source.accounts(), source.authorities(), source.inconsistencies()]
    assert leaks(outputs, secrets) == 0, "password hash bytes appear in what the readers return"


@pytest.mark.shared
@pytest.mark.parametrize("machine", ["studentpc8", "chitonsrv", "regipy"])
def test_real_lsa_secrets_stay_in_the_hive(real_hive, machine):
    path = real_hive(f"{machine}-SECURITY")
    secrets = lsa_secrets(path)
    assert secrets, "the test found no secrets to look for"
    assert leaks(secrets[-1].hex(), secrets) >= 1
    assert leaks(read_security(path), secrets) == 0, "LSA secret bytes appear in what the reader returns"
