"""Shared helpers for the benchmarks: reuse the integration harness (a real
tarnd and real PostgreSQL 15), and report medians."""
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest import Tarnd, wait_until  # noqa: E402
from pg import PG_BIN, Compute, lsn, lsn_str  # noqa: E402,F401


def start_tarnd(sets=None, binary=None):
    d = Path(tempfile.mkdtemp(prefix="tarn-bench-"))
    t = Tarnd(d, sets=dict({"log_level": "warn"}, **(sets or {})),
              binary=binary)
    return t.start()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def machine():
    return (f"{os.cpu_count()} cores, kernel {os.uname().release}, "
            f"PostgreSQL {subprocess.run([str(PG_BIN / 'postgres'), '-V'], capture_output=True, text=True).stdout.strip()}")


class Receivewal:
    """pg_receivewal --synchronous as a peer standby."""

    def __init__(self, compute, directory, start=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(PG_BIN / "pg_receivewal"), "-D", str(self.dir),
               "--synchronous", "-n", "-h", "127.0.0.1", "-p",
               str(compute.port), "-U", "postgres", "--no-password"]
        if start is not None:
            cmd += ["--startpos", lsn_str(start)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
