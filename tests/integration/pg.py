"""A real PostgreSQL 15 compute for the integration tests.

initdb and the server run as an unprivileged user when the tests run as
root (PostgreSQL refuses root), in a world-readable temporary directory
outside pytest's private tmp.  Clients (psql, pgbench, pg_waldump) run as
the test user and connect over loopback TCP with trust auth.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import free_port, wait_until

PG_BIN = Path(os.environ.get("TARN_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = os.environ.get("TARN_PG_USER", "tarntest")


def ensure_user():
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", PG_USER], check=True)


def as_user(cmd):
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--"] + cmd
    return cmd


class Compute:
    def __init__(self, name="pg", settings=None, base=None):
        ensure_user()
        self.base = Path(base or tempfile.mkdtemp(prefix=f"tarn-{name}-",
                                                   dir="/tmp"))
        os.chmod(self.base, 0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.datadir = self.base / "data"
        self.port = free_port()
        self.log = self.base / "postgres.log"
        self.settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "synchronous_standby_names": "'tarn'",
            "wal_keep_size": "'2GB'",
            "fsync": "on",
            "max_connections": "40",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
        }
        self.settings.update(settings or {})

    @property
    def pg_wal(self):
        return self.datadir / "pg_wal"

    def conninfo(self, **extra):
        parts = [f"host=127.0.0.1 port={self.port} user=postgres "
                 "dbname=postgres"]
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    def initdb(self):
        subprocess.run(as_user([str(PG_BIN / "initdb"), "-D",
                                str(self.datadir), "-U", "postgres",
                                "-A", "trust", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        self.write_settings()
        return self

    def write_settings(self):
        conf = self.datadir / "postgresql.auto.conf"
        lines = [f"{k} = {v}" for k, v in self.settings.items()]
        text = "\n".join(lines) + "\n"
        if os.geteuid() == 0:
            subprocess.run(as_user(["tee", str(conf)]), input=text.encode(),
                           check=True, capture_output=True)
        else:
            conf.write_text(text)

    def pg_ctl(self, *args, timeout=120, check=True):
        return subprocess.run(as_user([str(PG_BIN / "pg_ctl"), "-D",
                                       str(self.datadir), "-l",
                                       str(self.log), *args]),
                              capture_output=True, text=True,
                              timeout=timeout, check=check)

    def start(self):
        self.pg_ctl("start", "-w", "-t", "60")
        return self

    def stop(self, mode="fast"):
        if (self.datadir / "postmaster.pid").exists():
            self.pg_ctl("stop", "-m", mode, "-w", "-t", "60", check=False)

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def postmaster_pid(self):
        return int((self.datadir / "postmaster.pid").read_text().split()[0])

    def cleanup(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def psql(self, sql, db="postgres", timeout=120, check=True):
        p = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-At", "-v",
                            "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", "-d", db,
                            "-c", sql],
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"psql {sql!r}: {p.stderr}")
        return p.stdout.strip()

    def pgbench(self, *args, timeout=600, background=False):
        cmd = [str(PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p",
               str(self.port), "-U", "postgres", *args, "postgres"]
        if background:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"pgbench {args}: {p.stdout}{p.stderr}")
        return p.stdout

    def current_lsn(self):
        return self.psql("SELECT pg_current_wal_flush_lsn()")

    def replication(self):
        """pg_stat_replication rows for tarn, as dicts."""
        out = self.psql("SELECT application_name, state, sync_state, "
                        "write_lsn, flush_lsn, replay_lsn FROM "
                        "pg_stat_replication WHERE application_name = "
                        "'tarn'")
        rows = []
        for line in out.splitlines():
            a, st, sync, w, f, r = line.split("|")
            rows.append({"application_name": a, "state": st,
                         "sync_state": sync, "write_lsn": w,
                         "flush_lsn": f, "replay_lsn": r})
        return rows

    def wait_streaming(self, timeout=30):
        """Until tarn streams and has reported its positions."""
        wait_until(lambda: any(r["state"] == "streaming" and r["flush_lsn"]
                               for r in self.replication()), timeout,
                   "tarn never appeared streaming in pg_stat_replication")


def lsn(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def lsn_str(v):
    return f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


SEG_SIZE = 16 << 20


def seg_name(segno, seg_size=SEG_SIZE, tli=1):
    per = 0x100000000 // seg_size
    return f"{tli:08X}{segno // per:08X}{segno % per:08X}"


def read_wal(directory, start, end, seg_size=16 << 20):
    """Bytes [start, end) from a directory of segment files (plain or
    .partial names)."""
    out = bytearray()
    pos = start
    while pos < end:
        segno, off = divmod(pos, seg_size)
        name = seg_name(segno, seg_size)
        path = Path(directory) / name
        if not path.exists():
            path = Path(directory) / (name + ".partial")
        n = min(seg_size - off, end - pos)
        with open(path, "rb") as f:
            f.seek(off)
            chunk = f.read(n)
        assert len(chunk) == n, f"{path} is short"
        out += chunk
        pos += n
    return bytes(out)


def waldump(directory, start, end):
    """pg_waldump's record lines for [start, end), from a copy of the
    directory where .partial names are made plain."""
    tmp = Path(tempfile.mkdtemp(prefix="tarn-waldump-"))
    # Only the segments of [start, end]: pg_waldump learns the segment size
    # from whichever file it opens first, and a preallocated segment past
    # the end is all zeros.
    wanted = {seg_name(n) for n in range(start // SEG_SIZE,
                                          (end - 1) // SEG_SIZE + 1)}
    try:
        for f in Path(directory).iterdir():
            name = f.name.removesuffix(".partial")
            if name in wanted:
                shutil.copyfile(f, tmp / name)
        p = subprocess.run([str(PG_BIN / "pg_waldump"), "-p", str(tmp),
                            "-s", lsn_str(start), "-e", lsn_str(end)],
                           capture_output=True, text=True, timeout=300)
        lines = [x for x in p.stdout.splitlines() if x.startswith("rmgr:")]
        return lines, p.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
