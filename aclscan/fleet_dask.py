"""Fleet scans on a Dask distributed cluster (`aclscan fleet --scheduler`).

Dask is the engine: one task per image, submitted to an existing scheduler
(``tcp://HOST:8786``) or to a :class:`distributed.LocalCluster` started here
(``local:N``). Dask places the tasks, retries a task whose worker died (the
scheduler reschedules it; ``retries`` covers a task that raised), and its
dashboard shows the run. Each task writes one scan database on storage the
workers and this machine share; this machine ingests each as its future completes.

A task runs the scan in a scan process of its worker thread (``python -m
aclscan.fleet_dask --serve``, started once and reused for many images): Dask's worker
processes are daemonic and may not fork the scan's row-writer child themselves, and
a crash in one image's scan then takes down only that process (the task is retried).
The scan process dies with the worker (``PR_SET_PDEATHSIG``), so a killed worker
leaves no scan running behind it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator, Sequence

from aclscan.errors import Error, SchedulerUnreachable
from aclscan.fleet import FailedInput, ScanJob, ScanProgress, scan_one

# Resources a scan task asks of a worker that declares them (`dask worker --resources
# "CPU=8 MEMORY=32e9"`): a scan is two processes (the MFT pass and its row writer), and
# needs about 200 MiB per million files on the volume above a fixed base (README, "Fleet").
SCAN_CPUS = 2
BASE_MEMORY = 256 << 20
MEMORY_PER_MILLION_FILES = 200 << 20
MFT_RECORD_BYTES = 1024
CONNECT_SECONDS = 10.0  # the client's, once the scheduler has said who it is
IDENTIFY_SECONDS = 5.0
PROBE_SECONDS = 3.0
RETRIES = 2
_POLL_SECONDS = 0.25


def parse_scheduler(text: str) -> tuple[str, str | int]:
    """`local:N` -> ("local", N); a scheduler address (`tcp://HOST:PORT`, `tls://...`,
    `HOST:PORT`) -> ("address", text). ValueError otherwise."""
    if text.lower().startswith("local:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"{text!r}: local:N needs a worker count N of 1 or more")
        return "local", int(count)
    if "://" in text or (":" in text and text.rsplit(":", 1)[1].isdigit()):
        return "address", text
    raise ValueError(f"{text!r} is neither a scheduler address (tcp://HOST:8786) nor local:N")


def probe_scheduler(address: str, seconds: float = PROBE_SECONDS) -> None:
    """Fail fast on a scheduler that cannot answer: a TCP connection to its host and
    port (refused, unknown name, no route) before Dask's client, which would retry
    until its timeout. SchedulerUnreachable when it fails."""
    scheme, _, rest = address.rpartition("://")
    if scheme not in ("", "tcp", "tls", "ws", "wss"):
        return  # inproc, ucx, ...: left to Dask
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise SchedulerUnreachable(f"Dask scheduler {address}: no HOST:PORT in the address")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as exc:
        raise SchedulerUnreachable(f"Dask scheduler {address} unreachable: "
                                   f"{exc.strerror or exc.__class__.__name__}") from None


def identify_scheduler(address: str, seconds: float = IDENTIFY_SECONDS) -> None:
    """Ask the server at ``address`` what it is (Dask's ``identity`` call) before a
    client is made: a port held by something else, or a worker's address, is then a
    one-line error instead of a client that cannot be closed."""
    import asyncio

    from distributed.comm import connect

    async def identity() -> dict:
        comm = await connect(address, timeout=seconds)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> dict:  # Dask's own timeout does not cover a server that never answers
        return await asyncio.wait_for(identity(), seconds)

    try:
        reply = asyncio.run(bounded())
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        raise SchedulerUnreachable(f"Dask scheduler {address} unreachable: {exc}") from None
    except Exception as exc:  # a server that answered, but not in Dask's protocol
        raise SchedulerUnreachable(f"{address} did not answer as a Dask scheduler "
                                   f"({exc.__class__.__name__}: {' '.join(str(exc).split())[:120]})") from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise SchedulerUnreachable(f"{address} is a Dask {kind or 'server'}, not a scheduler")


def estimated_files(image: str) -> int:
    """An upper bound of the files on the image's NTFS volumes, read from the size of
    each `$MFT` (cheap: a few sectors); for a gzip image, the uncompressed size over
    the MFT record size; a million where the image cannot be read here."""
    try:
        if image.lower().endswith(".gz"):
            with open(image, "rb") as handle:  # ISIZE: the uncompressed size modulo 4 GiB
                handle.seek(-4, os.SEEK_END)
                return int.from_bytes(handle.read(4), "little") // MFT_RECORD_BYTES
        from aclscan.image import Image

        with Image(image) as opened:
            return sum(opened.open_volume(location).mft_size() for location in opened.locate()) // MFT_RECORD_BYTES
    except (Error, OSError):
        return 1_000_000


def task_memory(files: int) -> int:
    return BASE_MEMORY + MEMORY_PER_MILLION_FILES * files // 1_000_000


class ScanProcessDied(RuntimeError):
    """The scan's child process ended without a result (killed, crashed): Dask retries the task."""


# A scan helper serves this many scans, then a fresh one takes over (memory a long run
# of scans might keep is given back).
SCANS_PER_HELPER = 100


class _ScanHelper:
    """A scan process of this worker thread that serves scan after scan (`python -m
    aclscan.fleet_dask --serve`): the interpreter starts and aclscan is imported once
    per worker thread, not once per image. One JSON request a line on its stdin, one
    JSON outcome a line on its stdout; its stderr goes to a file, for the reason when
    it dies."""

    def __init__(self):
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-m", "aclscan.fleet_dask", "--serve", str(os.getpid())],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors,
                                        text=True, bufsize=1)
        self.scans = 0

    def scan(self, request: dict) -> str | None:
        """The outcome line, or None when the process died."""
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        self.scans += 1
        return line or None

    def death(self) -> str:
        """Why the process ended: its exit status and the last line it wrote to stderr."""
        code = self.process.wait()
        cause = f"signal {-code}" if code < 0 else f"exit code {code}"
        self.errors.seek(0)
        last = (self.errors.read().decode(errors="replace").strip().splitlines() or [""])[-1]
        return cause + (f": {last}" if last else "")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.errors.close()


_thread_helper = threading.local()


def scan_task(image: str, scan_db: str, domain_files: Sequence[str] = ()) -> FailedInput | None:
    """Runs on a worker: one image into one scan database, in this worker thread's scan
    process. An image the scan rejects is a FailedInput (no retry: it would fail again);
    a scan process that dies without a result raises, so Dask retries the task."""
    helper = getattr(_thread_helper, "helper", None)
    if helper is None or helper.process.poll() is not None or helper.scans >= SCANS_PER_HELPER:
        if helper is not None:
            helper.close()
        helper = _thread_helper.helper = _ScanHelper()
    line = helper.scan({"image": image, "scan_db": scan_db, "domain_files": list(domain_files)})
    if line is None:
        _thread_helper.helper = None
        reason = helper.death()
        helper.close()
        raise ScanProcessDied(f"the scan process of {image} ended with {reason}")
    result = json.loads(line)
    return None if result is None else FailedInput(**result)


def _serve(parent: int) -> int:
    """The scan process: die with the worker, then scan each request until stdin closes."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the worker died before prctl took effect
            return 1
    replies = sys.stdout
    sys.stdout = sys.stderr  # whatever the scan might print stays out of the replies
    for line in sys.stdin:
        job = json.loads(line)
        failure = scan_one(job["image"], job["scan_db"], job["domain_files"])
        replies.write(json.dumps(None if failure is None else dataclasses.asdict(failure)) + "\n")
        replies.flush()
    return 0


class DaskRunner:
    """Scan jobs on a Dask cluster: ``scheduler`` is an address or ``local:N``. It
    connects (or starts the local cluster) in :meth:`start`, only once there is an
    image to scan, then calls ``announce(runner)``; use it as a context manager so
    that it disconnects (and stops a local cluster) at the end."""

    def __init__(self, scheduler: str, *, retries: int = RETRIES, connect_seconds: float = CONNECT_SECONDS,
                 announce=None):
        self.kind, self.target = parse_scheduler(scheduler)
        self.scheduler = scheduler
        self.retries = retries
        self.connect_seconds = connect_seconds
        self.announce = announce
        self.client = None
        self.cluster = None
        self.notes: list[str] = []

    def __enter__(self) -> "DaskRunner":
        return self

    def start(self) -> None:
        if self.client is not None:
            return
        if self.kind == "address":
            probe_scheduler(self.target)
            identify_scheduler(self.target)
        import logging

        from distributed import Client, LocalCluster

        # Dask logs every lost worker and busy port; the run reports what matters itself.
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if self.kind == "local":
            try:
                import psutil

                memory = psutil.virtual_memory().total // self.target
                with warnings.catch_warnings():  # "port 8787 is in use": the link printed says which port
                    warnings.simplefilter("ignore")
                    self.cluster = LocalCluster(n_workers=self.target, threads_per_worker=1, processes=True,
                                                resources={"CPU": SCAN_CPUS, "MEMORY": memory},
                                                silence_logs=logging.ERROR)
            except Exception as exc:  # ports, spawn failures: nothing to scan on
                raise SchedulerUnreachable(f"cannot start a local Dask cluster ({self.scheduler}): "
                                           f"{exc.__class__.__name__}: {exc}") from None
            address = self.cluster.scheduler_address
        else:
            address = self.target
        try:
            self.client = Client(address, timeout=f"{self.connect_seconds}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise SchedulerUnreachable(f"Dask scheduler {self.scheduler} unreachable: {exc}") from None
        except Exception as exc:  # something answers on that port, but not a Dask scheduler
            self.close()
            raise SchedulerUnreachable(f"{self.scheduler} did not answer as a Dask scheduler "
                                       f"({exc.__class__.__name__}: {str(exc)[:120]})") from None
        if self.announce:
            self.announce(self)

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    @property
    def dashboard_link(self) -> str | None:
        try:
            return self.client.dashboard_link if self.client is not None else None
        except Exception:  # no dashboard served (bokeh absent, disabled on the scheduler)
            return None

    def describe(self) -> str:
        workers = self._workers() if self.client else {}
        threads = sum(w.get("nthreads", 0) for w in workers.values())
        where = f"local cluster ({self.scheduler})" if self.kind == "local" else f"Dask scheduler {self.scheduler}"
        return f"{where}: {len(workers)} worker(s), {threads} thread(s)"

    def _workers(self) -> dict:
        try:
            return self.client.scheduler_info(n_workers=-1)["workers"]  # every worker, not the first few
        except TypeError:  # distributed before 2025 lists them all anyway
            return self.client.scheduler_info()["workers"]

    def _declared(self) -> tuple[float, float]:
        """The most CPU and MEMORY any worker declares (0 where none does)."""
        workers = self._workers().values()
        declared = [w.get("resources") or {} for w in workers]
        return (max((r.get("CPU", 0) for r in declared), default=0),
                max((r.get("MEMORY", 0) for r in declared), default=0))

    @staticmethod
    def _resources(job: ScanJob, cpus: float, memory: float) -> dict | None:
        """CPU and MEMORY as the workers declare them; none where no worker does (each
        worker thread then runs one scan) and never more than the largest worker has,
        so that no task waits forever."""
        resources = {}
        if cpus:
            resources["CPU"] = min(SCAN_CPUS, cpus)
        if memory:
            resources["MEMORY"] = min(task_memory(estimated_files(job.image)), memory)
        return resources or None

    def run(self, jobs: Sequence[ScanJob], progress: ScanProgress | None = None
            ) -> Iterator[tuple[ScanJob, FailedInput | None]]:
        from concurrent.futures import CancelledError

        from distributed import as_completed

        total, done, failed = len(jobs), 0, 0
        if not jobs:
            return
        self.start()
        cpus, memory = self._declared()
        if not cpus:
            self.notes.append("the workers declare no CPU resource: each worker thread runs one scan (start "
                              f"workers with --resources 'CPU=N' to reserve {SCAN_CPUS} CPUs per scan)")
        job_of, futures = {}, []
        for index, job in enumerate(jobs):
            future = self.client.submit(scan_task, job.image, job.scan_db, job.domain_files,
                                        key=f"aclscan-scan-{index}-{Path(job.scan_db).name}-{os.getpid()}",
                                        resources=self._resources(job, cpus, memory), retries=self.retries, pure=False)
            job_of[future.key] = job
            futures.append(future)
        pending = as_completed(futures, loop=self.client.loop)
        futures.clear()  # as_completed holds each future until it is handed out
        running, polled = 0, 0.0
        while not pending.is_empty():
            batch = pending.next_batch(block=False)
            if progress and time.monotonic() - polled >= 1.0:
                running = self._running(job_of)
                polled = time.monotonic()
            if not batch:
                if progress:
                    progress(done, failed, running, total)
                time.sleep(_POLL_SECONDS)
                continue
            for future in batch:
                job = job_of[future.key]
                try:
                    outcome = future.result()
                except CancelledError:
                    outcome = FailedInput(job.image, job.scan_db, "cancelled: the connection to the Dask scheduler "
                                          "was lost", SchedulerUnreachable.exit_code)
                except Exception as exc:  # the task's error after its retries, or KilledWorker
                    outcome = FailedInput(job.image, job.scan_db,
                                          f"{exc.__class__.__name__}: {' '.join(str(exc).split())}", Error.exit_code)
                future.release()
                done += 1
                failed += outcome is not None
                running = max(0, running - 1)
                if progress:
                    progress(done, failed, running, total)
                yield job, outcome

    def _running(self, job_of: dict) -> int:
        try:
            processing = self.client.processing()
        except Exception:  # progress only: never fail the run for it
            return 0
        return sum(1 for keys in processing.values() for key in keys if key in job_of)


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    sys.exit(_serve(int(sys.argv[2])))
