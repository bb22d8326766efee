"""Shared fixtures: a real tarnd on loopback, an HTTP helper, the CLI.

TARN_BUILD names the meson build directory (default: <repo>/build).  Every
test gets its own data directory and free ports, so tests never share
state.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TARN_BUILD", ROOT / "build"))
TARND = BUILD / "server" / "tarnd"
TARN = BUILD / "server" / "tarn"


def wait_until(cond, timeout=5, why=""):
    """Poll @cond until it is true; fail with @why (a string or a callable
    giving one) after @timeout seconds."""
    deadline = time.time() + timeout
    while not cond():
        if time.time() >= deadline:
            raise AssertionError(why() if callable(why) else why)
        time.sleep(0.05)


def read_all(sock):
    """Everything the peer sends until it closes the connection."""
    chunks = []
    while True:
        c = sock.recv(65536)
        if not c:
            return b"".join(chunks)
        chunks.append(c)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, body, headers, raw=None):
        self.status = status
        self.body = body
        self.headers = headers
        self.raw = raw          # the body as bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def msg(self):
        return self.json["msg"]

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Tarnd:
    """One tarnd process with its own data directory and ports."""

    def __init__(self, tmp_path, sets=None, config=None, env=None,
                 binary=None):
        self.dir = tmp_path
        self.binary = binary or TARND
        self.env = env
        self.data_dir = tmp_path / "data"
        self.port = free_port()
        self.page_port = free_port()
        self.log_path = tmp_path / "tarnd.stderr"
        self.config = config
        self.sets = {
            "data_dir": str(self.data_dir),
            "http_listen": f"127.0.0.1:{self.port}",
            "page_listen": f"127.0.0.1:{self.page_port}",
            "log_level": "debug",
        }
        self.sets.update(sets or {})
        self.proc = None
        self.token = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def argv(self):
        args = [str(self.binary)]
        if self.config:
            args += ["-c", str(self.config)]
        for k, v in self.sets.items():
            args += ["--set", f"{k}={v}"]
        return args

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(self.argv(), stdout=self.log,
                                     stderr=self.log, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"tarnd exited with {self.proc.returncode}:\n"
                    + self.log_text())
            try:
                if self.get("/v1/status").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("tarnd did not become ready:\n"
                             + self.log_text())

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text, timeout=5):
        wait_until(lambda: text in self.log_text(), timeout,
                   lambda: f"no '{text}' in the log:\n" + self.log_text())

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.log.close()
        return rc

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.log.close()

    def restart(self):
        self.stop()
        return self.start()

    def request(self, method, path, body=None, headers=None, token=None,
                timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        hdrs = dict(headers or {})
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            data = raw.decode("utf-8", "replace")
            return Response(r.status, data, dict(r.getheaders()), raw)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def metric(self, name, **labels):
        """The value of series @name in GET /metrics, with exactly
        @labels (in the order given, as tarnd writes them)."""
        if labels:
            name += "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) \
                + "}"
        for line in self.get("/metrics").body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    # Conveniences that assert success.
    def create_tenant(self, **body):
        r = self.post("/v1/tenant", body)
        assert r.status == 201, r
        return r.json

    def create_timeline(self, tenant, **body):
        r = self.post(f"/v1/tenant/{tenant}/timeline", body)
        assert r.status == 201, r
        return r.json

    def wal_dir(self, tenant, timeline):
        return (self.data_dir / "tenants" / tenant / "timelines" / timeline
                / "wal")

    def timeline(self, tenant, timeline):
        r = self.get(f"/v1/tenant/{tenant}/timeline/{timeline}")
        assert r.status == 200, r
        return r.json

    def attach(self, tenant, timeline, conninfo, **body):
        body["conninfo"] = conninfo
        return self.post(f"/v1/tenant/{tenant}/timeline/{timeline}/compute",
                         body, timeout=60)

    def adopt(self, compute, tenant=None, **timeline):
        """Import the data directory of @compute (after its initdb, while
        it is stopped) as a new root timeline, then start the compute and
        attach it to that timeline.  A new tenant unless @tenant is given;
        @timeline: more of the creation body (name, ...).  Returns the
        tenant id and the new timeline's detail."""
        if tenant is None:
            tenant = self.create_tenant()["id"]
        tl = self.create_timeline(tenant, import_pgdata=str(compute.datadir),
                                  **timeline)
        compute.start()
        r = self.attach(tenant, tl["timeline_id"], compute.conninfo())
        assert r.status == 200, r
        return tenant, tl

    def raw(self, data, read_until_close=True, timeout=5):
        """Send raw bytes; return everything the server answers."""
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=timeout) as s:
            s.sendall(data)
            if not read_until_close:
                return s.recv(65536)
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
            except (ConnectionResetError, socket.timeout):
                pass
            return b"".join(chunks)

    def cli(self, *args, env=None, check=True):
        e = dict(os.environ)
        e["TARN_HTTP"] = self.url
        if self.token:
            e["TARN_TOKEN"] = self.token
        e.update(env or {})
        p = subprocess.run([str(TARN), *args], capture_output=True,
                           text=True, env=e, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"tarn {' '.join(args)} failed "
                                 f"({p.returncode}): {p.stderr}")
        return p


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "AddressSanitizer:DEADLYSIGNAL")


def assert_clean_exit(t):
    """A tarnd that was still running stops with 0, and no tarnd in a test
    logged a sanitizer report (the ASan+UBSan run relies on this)."""
    if t.proc is not None and t.proc.poll() is None:
        rc = t.stop()
        assert rc == 0, f"tarnd exited {rc} on SIGTERM:\n" + t.log_text()
    if t.log_path.exists():
        text = t.log_text()
        for mark in SANITIZER_MARKS:
            assert mark not in text, text


@pytest.fixture
def compute_factory():
    """Make PostgreSQL 15 computes; all are stopped and removed after."""
    from pg import Compute
    made = []

    def make(**kw):
        c = Compute(**kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.cleanup()


@pytest.fixture
def tarnd(tmp_path):
    t = Tarnd(tmp_path).start()
    yield t
    assert_clean_exit(t)


@pytest.fixture
def make_tarnd(tmp_path):
    """Factory for tests that need custom settings or several servers."""
    made = []

    def make(sets=None, config=None, start=True, sub="a", env=None):
        d = tmp_path / sub
        d.mkdir(exist_ok=True)
        t = Tarnd(d, sets=sets, config=config, env=env)
        made.append(t)
        return t.start() if start else t

    yield make
    for t in made:
        assert_clean_exit(t)
