"""Mutation testing with mutmut, one group of modules at a time, each with the tests
that exercise it (so a run finishes on a small machine).

    python -m tests.mutation sd            # or classify, readiness, plan, sam, fix, registry
    python -m tests.mutation sd --max-children 2

Works on a copy of the tree in a temporary folder (mutmut writes ``mutants/`` and
its cache beside the code it mutates), prints mutmut's result per mutant that
survived and the score: killed / total. README ("Tests and benchmarks") keeps the
latest scores. Not run by pytest or CI: a run takes minutes to an hour.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

# group: (files mutated, tests run against them). The sd group leaves out the tests of
# real Windows descriptors (marked "shared"): they read the volumes with TSK on every run.
GROUPS = {
    "sd": (["aclscan/sd/sid.py", "aclscan/sd/ace.py", "aclscan/sd/acl.py", "aclscan/sd/descriptor.py"],
           ["tests/sd/test_sid.py", "tests/sd/test_ace.py", "tests/sd/test_acl.py", "tests/sd/test_descriptor.py",
            "tests/sd/test_sddl.py", "tests/sd/test_sd_mutants.py"]),
    "classify": (["aclscan/classify.py"],
                 ["tests/classify/test_verdicts.py", "tests/test_mutants.py"]),
    "readiness": (["aclscan/readiness.py"], ["tests/test_readiness.py", "tests/test_expected_outputs.py",
                                             "tests/test_mutants.py"]),
    "plan": (["aclscan/plan.py"], ["tests/test_plan.py", "tests/test_plan_choices.py", "tests/test_expected_outputs.py",
                                   "tests/test_mutants.py"]),
    "sam": (["aclscan/hives/sam.py"], ["tests/hives/test_readers.py", "tests/test_sam_mutants.py"]),
    # The fix's journal, and the functions of aclscan/fix/offline.py that need no volume
    # (MUTANTS): the rest of aclscan/fix writes volumes through FUSE or libntfs-3g, whose
    # tests take minutes each.
    "fix": (["aclscan/fix/journal.py", "aclscan/fix/offline.py"], ["tests/test_journal.py", "tests/test_fix_checks.py"]),
    # The registry hive reader, checked against hivex and regipy on generated and real
    # hives (../shared/data/windows, linked beside the copy).
    "registry": (["aclscan/hives/registry.py"],
                 ["tests/hives/test_registry.py", "tests/hives/test_key_security.py", "tests/hives/test_real_hives.py",
                  "tests/hives/test_registry_mutants.py"]),
}
# The sd group leaves out the real Windows descriptors; the registry group the check of
# the largest real SYSTEM hive, over a minute of hivex and regipy on every run.
# Groups that run only some of their modules' mutants (mutmut's names, fnmatch patterns).
MUTANTS = {
    "fix": ["aclscan.fix.journal.*"] + [f"aclscan.fix.offline.x_{name}__mutmut_*" for name in (
        "_writes_not_kept", "_chunks", "_changed_so_far", "default_journal_path")],
}
PYTEST_ARGS = {"sd": ["-m", "not shared"], "registry": ["-k", "not SYSTEM_WIN_10_1709"]}
# Groups whose modules the scan never runs: their tests may share one scan database per
# scenario across the pytest sessions of every mutant (tests/conftest.py, scenario_db).
SHARED_SCANS = {"readiness", "plan", "fix"}
COPIED = ("aclscan", "tests", "sample_volumes", "pyproject.toml")
KILLED = ("killed",)


def _copy_tree(target: Path) -> None:
    for name in COPIED:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
        else:
            shutil.copy2(source, target / name)


def _config(files: list[str], tests: list[str], existing: set[str], pytest_args: list[str]) -> str:
    selection = [t for t in tests if t in existing]
    lines = ["[mutmut]", "source_paths=aclscan", "only_mutate="]
    lines += [f"    {f}" for f in files]
    lines += ["pytest_add_cli_args_test_selection="]
    lines += [f"    {t}" for t in selection]
    lines += ["pytest_add_cli_args=", "    -p", "    no:cacheprovider", *(f"    {a}" for a in pytest_args)]
    lines += ["also_copy=", "    sample_volumes"]
    return "\n".join(lines) + "\n"


def run(group: str, max_children: int, keep: Path | None = None) -> int:
    files, tests = GROUPS[group]
    with tempfile.TemporaryDirectory(prefix=f"aclscan-mutmut-{group}-") as scratch:
        work = Path(scratch)
        _copy_tree(work)
        # The tests run in work/mutants; tests/shared_data.py looks for the real Windows
        # data beside the project, here the work folder.
        if (PROJECT.parent / "shared").is_dir():
            (work / "shared").symlink_to(PROJECT.parent / "shared")
        # pyproject.toml would take precedence over setup.cfg for mutmut's settings.
        existing = {t for t in tests if (work / t).is_file()}
        (work / "setup.cfg").write_text(_config(files, tests, existing, PYTEST_ARGS.get(group, [])))
        mutmut = str(Path(sys.executable).with_name("mutmut"))
        # The copy's code, not whatever PYTHONPATH points at, is what mutmut mutates.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if group in SHARED_SCANS:
            env["ACLSCAN_SCENARIO_CACHE"] = str(work / "scenario-cache")
        subprocess.run([mutmut, "run", "--max-children", str(max_children), *MUTANTS.get(group, [])], cwd=work, env=env)
        score(group, work, env)
        if keep is not None:
            shutil.copytree(work, keep, symlinks=True, dirs_exist_ok=True)
    return 0


# A string of SQL: a mutant that only changes its case is equivalent (SQLite ignores the
# case of keywords and names).
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|BEGIN|COALESCE)\b|\b(WHERE|ORDER BY|LIMIT)\b.*\?",
                  re.IGNORECASE)


def _sql_case_only(mutmut: str, work: Path, env: dict, name: str) -> bool:
    shown = subprocess.run([mutmut, "show", name], cwd=work, env=env, capture_output=True, text=True).stdout
    removed = [line[1:] for line in shown.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in shown.splitlines() if line.startswith("+") and not line.startswith("+++")]
    return bool(removed) and len(removed) == len(added) and all(
        r != a and r.lower() == a.lower() and _SQL.search(r) for r, a in zip(removed, added))


def score(group: str, work: Path, env: dict | None = None) -> None:
    """Print the survivors and the score of a mutmut folder (a run's, or one kept with
    ``--keep`` after ``mutmut run NAMES`` there): killed / total, and the same without the
    survivors that only change the case of SQL text."""
    env = env if env is not None else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    patterns = MUTANTS.get(group, [])
    results = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                             text=True).stdout
    statuses = Counter()
    survivors = []
    for line in results.splitlines():
        found = re.match(r"\s*(\S+): (.+)$", line)
        if found and (not patterns or any(fnmatch.fnmatchcase(found.group(1), p) for p in patterns)):
            statuses[found.group(2).strip()] += 1
            if found.group(2).strip() == "survived":
                survivors.append(found.group(1))
    sql_case = [name for name in survivors if _sql_case_only(mutmut, work, env, name)]
    for name in survivors:
        print("survived:", name, "(SQL case only)" if name in sql_case else "")
    total = sum(statuses.values())
    killed = sum(n for status, n in statuses.items() if status in KILLED)
    print(f"{group}: {dict(statuses)}")
    print(f"{group}: killed {killed}/{total} ({100 * killed / max(total, 1):.1f}%)")
    if sql_case:
        rest = total - len(sql_case)
        print(f"{group}: {len(sql_case)} survivors only change the case of SQL text; without them "
              f"killed {killed}/{rest} ({100 * killed / max(rest, 1):.1f}%)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group", choices=sorted(GROUPS))
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="copy the work folder here (for `mutmut show NAME` in it)")
    parser.add_argument("--score", type=Path, metavar="DIR",
                        help="run nothing: print the score of a folder kept with --keep (after `mutmut run NAMES` in it)")
    args = parser.parse_args()
    if args.score is not None:
        score(args.group, args.score)
        return 0
    return run(args.group, args.max_children, args.keep)


if __name__ == "__main__":
    sys.exit(main())
