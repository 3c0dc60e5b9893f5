"""`aclscan fleet --scheduler`: scans on a real Dask cluster (a `dask scheduler` and
two `dask worker` processes on 127.0.0.1), compared with the local `--jobs 2` fleet;
a worker killed mid-scan; a corrupt image; an unreachable scheduler; `local:N`."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from distributed import Client

from aclscan.cli import main
from aclscan.errors import SchedulerUnreachable
from aclscan.fleet import open_fleet, summarise
from aclscan.fleet_dask import DaskRunner, estimated_files, task_memory
from tests.scenarios import SAMPLES, manifest

ROOT = Path(__file__).resolve().parents[1]
IMAGES = sorted(SAMPLES.glob("*.img.gz"))


class DaskCluster:
    """A scheduler and worker processes started with the `dask` command."""

    def __init__(self, directory: Path, workers: int = 2):
        self.directory = directory
        self.processes: list[subprocess.Popen] = []
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        scheduler_file = directory / "scheduler.json"
        log = open(directory / "dask.log", "ab")
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)], env=env, stdout=log, stderr=log, cwd=directory))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), (directory / "dask.log").read_text()
        for n in range(workers):
            # No nanny: a killed worker stays dead, so its tasks must move to the other.
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                 "--no-nanny", "--no-dashboard", "--resources", "CPU=2", "--name", f"w{n}",
                 "--local-directory", str(directory / f"w{n}")], env=env, stdout=log, stderr=log, cwd=directory))
        self.client = Client(scheduler_file=str(scheduler_file), timeout="60s")
        self.client.wait_for_workers(workers, timeout=120)
        self.address = self.client.scheduler.address
        self.worker_pids = self.client.run(os.getpid)  # worker address -> pid

    def close(self) -> None:
        self.client.close()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = DaskCluster(tmp_path_factory.mktemp("dask"))
    yield started
    started.close()


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fleet_contents(path: Path) -> dict:
    """Everything a fleet knows about its machines, keyed by name (ids and paths differ)."""
    db = sqlite3.connect(path)
    names = dict(db.execute("SELECT id, name FROM machines"))
    contents = {
        "machines": sorted(db.execute("SELECT name, computer_name, machine_sid, product_type, primary_domain_name,"
                                      " volume_serials FROM machines")),
        "sids": sorted((names[m], *rest) for m, *rest in db.execute(
            "SELECT machine_id, sid, verdict, account, mapped_sid, files, descriptors, hive_references"
            " FROM machine_sids")),
        "accounts": sorted((names[m], *rest) for m, *rest in db.execute(
            "SELECT machine_id, sid, name, kind FROM machine_accounts")),
        "previous": sorted((names[m], *rest) for m, *rest in db.execute(
            "SELECT machine_id, sid, source FROM machine_previous_sids")),
    }
    db.close()
    fleet = open_fleet(path, create=False)
    summary = summarise(fleet)
    fleet.conn.close()
    contents["duplicates"] = summary.duplicate_machine_sids
    contents["collisions"] = summary.identity_collisions
    contents["cross"] = [{k: v for k, v in r.items() if not k.endswith("_id")}
                         for r in summary.cross_machine_references]
    contents["failed"] = summary.failed
    return contents


def test_the_cluster_builds_the_fleet_local_processes_build(cluster, tmp_path, capsys):
    assert len(IMAGES) >= 8
    local, dask = tmp_path / "local", tmp_path / "dask"
    local.mkdir()
    dask.mkdir()
    code_local, _, _ = run(["fleet", str(local / "fleet.db"), *map(str, IMAGES), "--jobs", "2",
                            "--scans-dir", str(local)], capsys)
    code_dask, _, err = run(["fleet", str(dask / "fleet.db"), *map(str, IMAGES), "--scheduler", cluster.address,
                             "--scans-dir", str(dask)], capsys)
    assert code_local == code_dask == 1  # the clones collide
    assert f"Dask scheduler {cluster.address}: 2 worker(s)" in err
    expected, found = fleet_contents(local / "fleet.db"), fleet_contents(dask / "fleet.db")
    assert found["machines"] and found["sids"] and found["accounts"] and found["collisions"]
    assert found == expected
    # Anchored to the manifests: every scenario's machine SID, one machine per image.
    by_image = {Path(r[0]).name: r[1] for r in sqlite3.connect(dask / "fleet.db").execute(
        "SELECT image, machine_sid FROM machines")}
    assert sorted(by_image) == sorted(i.name for i in IMAGES)
    for image in IMAGES:
        name = image.name[: -len(".img.gz")]
        assert by_image[image.name] == manifest(name).get("machine_sid"), name
    assert sorted(p.name for p in dask.glob("*.db")) == sorted(["fleet.db", *(i.name[:-7] + ".db" for i in IMAGES)])
    assert not list(dask.glob("*.partial"))


def test_a_corrupt_image_is_a_failed_input(cluster, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.img"
    corrupt.write_bytes(b"\x00" * 65536)
    fleet_path = tmp_path / "fleet.db"
    code, out, err = run(["fleet", str(fleet_path), str(corrupt), str(SAMPLES / "clean.img.gz"),
                          "--scheduler", cluster.address], capsys)
    assert code == 3
    assert "corrupt.img" in err.splitlines()[-1]
    fleet = open_fleet(fleet_path, create=False)
    failed = fleet.execute("SELECT input, exit_code, reason FROM failed_inputs").fetchall()
    assert [(i, c) for i, c, _ in failed] == [(str(corrupt), 4)] and failed[0][2]
    assert [m.name for m in summarise(fleet).machines] == [manifest("clean")["computer"]]


def test_unreachable_scheduler_is_one_line_and_its_own_exit_code(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "aclscan", "fleet", str(tmp_path / "fleet.db"),
                           str(SAMPLES / "clean.img.gz"), "--scheduler", f"tcp://127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 17
    assert done.stderr.splitlines() == [f"Error: Dask scheduler tcp://127.0.0.1:{port} unreachable: Connection refused"]
    assert not (tmp_path / "clean.db").exists()  # nothing scanned
    assert main(["fleet", str(tmp_path / "fleet.db"), str(SAMPLES / "clean.img.gz"), "--scheduler", "nonsense"]) == 2


@pytest.mark.parametrize("server", ["refused", "silent", "not dask"])
def test_a_scheduler_that_does_not_answer_fails_within_10_s(server):
    """What the connection waits for is bounded (the start-up of Python is not part of it)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    if server == "refused":
        listener.close()
    else:
        listener.listen()

        def serve() -> None:  # accept, then say nothing, or answer garbage
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                if server == "not dask":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 64)

        threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(SchedulerUnreachable) as raised:
            DaskRunner(f"tcp://127.0.0.1:{port}").start()
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 10
    assert raised.value.exit_code == 17 and "\n" not in str(raised.value)


def test_a_worker_killed_mid_scan_loses_no_image(tmp_path, capsys):
    """Kill the worker whose scan is writing its database: Dask runs that scan again on
    the other worker; every image lands once, nothing fails, and the killed worker's
    scan process died with it."""
    (tmp_path / "cluster").mkdir()
    cluster = DaskCluster(tmp_path / "cluster")
    scans = tmp_path / "scans"
    killed: dict = {}

    def kill_a_worker_mid_scan() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            for partial in scans.glob("*.partial"):
                scan_pid = int(partial.name.rsplit(".", 2)[1].split("-")[0])
                try:
                    worker_pid = psutil.Process(scan_pid).ppid()
                except psutil.NoSuchProcess:
                    continue
                if worker_pid in cluster.worker_pids.values():
                    os.kill(worker_pid, signal.SIGKILL)
                    killed.update(worker=worker_pid, scan=scan_pid, db=partial.name.split(".")[0])
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker_mid_scan, daemon=True)
    killer.start()
    try:
        code, _, err = run(["fleet", str(tmp_path / "fleet.db"), *map(str, IMAGES), "--scheduler", cluster.address,
                            "--scans-dir", str(scans)], capsys)
        killer.join(timeout=10)
        assert killed, "no scan was seen running"
        assert code == 1, err  # the clones collide; no input failed
        db = sqlite3.connect(tmp_path / "fleet.db")
        images = [Path(r[0]).name for r in db.execute("SELECT image FROM machines")]
        assert sorted(images) == sorted(i.name for i in IMAGES)  # each image once
        assert db.execute("SELECT COUNT(*) FROM failed_inputs").fetchone()[0] == 0
        assert (scans / f"{killed['db']}.db").is_file()
        time.sleep(1)
        assert not psutil.pid_exists(killed["scan"]) or psutil.Process(killed["scan"]).status() == psutil.STATUS_ZOMBIE
        assert not list(scans.glob("*.partial"))
    finally:
        cluster.close()


def test_local_cluster_shows_its_dashboard(tmp_path, capsys):
    images = [SAMPLES / "ws1.img.gz", SAMPLES / "clean.img.gz"]
    code, _, err = run(["fleet", str(tmp_path / "fleet.db"), *map(str, images), "--scheduler", "local:2"], capsys)
    assert code == 0, err
    assert "local cluster (local:2): 2 worker(s)" in err
    assert "Dask dashboard: http://" in err
    fleet = open_fleet(tmp_path / "fleet.db", create=False)
    assert sorted(m.name for m in summarise(fleet).machines) == sorted(
        manifest(n)["computer"] for n in ("ws1", "clean"))


def test_a_scan_task_asks_memory_by_the_files_of_its_image(tmp_path):
    """256 MiB + 200 MiB per million MFT records: the records counted from `$MFT`'s size
    as The Sleuth Kit's istat reports it, or for a .gz image from its uncompressed size
    as gzip -l reports it (an upper bound)."""
    gz = SAMPLES / "ws1.img.gz"
    listing = subprocess.run(["gzip", "-l", str(gz)], capture_output=True, text=True, check=True).stdout
    uncompressed = int(listing.splitlines()[1].split()[1])
    assert estimated_files(str(gz)) == uncompressed // 1024
    raw = tmp_path / "ws1.raw"
    with gzip.open(gz) as src, open(raw, "wb") as dst:
        shutil.copyfileobj(src, dst)
    istat = subprocess.run(["istat", str(raw), "0"], capture_output=True, text=True, check=True).stdout
    mft_bytes = int(re.search(r"Type: \$DATA \(128-\d+\).*?\bsize: (\d+)", istat).group(1))
    assert estimated_files(str(raw)) == mft_bytes // 1024 > 0
    assert task_memory(mft_bytes // 1024) == (256 << 20) + (200 << 20) * (mft_bytes // 1024) // 1_000_000
    assert estimated_files(str(tmp_path / "absent.img")) == 1_000_000
