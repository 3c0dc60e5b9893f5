"""Time the hive editor on a real SYSTEM hive: every key descriptor naming a SID rewritten.

    python bench/bench_hive_edit.py [SYSTEM_HIVE] [OLD_SID NEW_SID]

Default: ../shared/data/windows/hives/regipy-SYSTEM_WIN_10_1709.gz (Windows 10, 15 MB, 43k
keys), BUILTIN\\Administrators re-pointed to a domain SID. The hive is dirty as stored
(sequence numbers differ, its logs are not there), so it is opened as if its logs were
applied: the timing is what matters here. Prints load, rewrite and write times.
"""

from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

from aclscan.hives.editor import HiveEditor
from aclscan.hives.repoint import replace_sids_in_key_security

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "windows" / "hives" / "regipy-SYSTEM_WIN_10_1709.gz"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    old, new = (argv[1], argv[2]) if len(argv) == 3 else ("S-1-5-32-544", "S-1-5-21-1000000001-1000000002-1000000003-500")
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    start = time.perf_counter()
    editor = HiveEditor(data, logs_applied=True, timestamp=0)
    loaded = time.perf_counter()
    keys, sk_cells = sum(1 for _ in editor.iter_keys()), sum(1 for _ in editor.iter_sk())
    walked = time.perf_counter()
    result = replace_sids_in_key_security(data, {old: new}, logs_applied=True, timestamp=0)
    done = time.perf_counter()
    print(f"{path.name}: {len(data) / 1e6:.1f} MB, {keys} keys, {sk_cells} sk cells")
    print(f"open {loaded - start:.2f} s, walk every key {walked - loaded:.2f} s; {old} -> {new} in every key "
          f"descriptor: {done - walked:.2f} s ({len(result.changes)} distinct descriptors rewritten), "
          f"{len(result.data) / 1e6:.1f} MB out")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
