"""tarnd as a process: start-up errors, the lock, restarts, signals."""
import signal
import subprocess
import time

from conftest import ROOT, TARND, Tarnd, wait_until


def run_tarnd(*args, timeout=20):
    return subprocess.run([str(TARND), *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_and_version():
    p = run_tarnd("--help")
    assert p.returncode == 0
    assert "Usage: tarnd" in p.stdout and "--set KEY=VALUE" in p.stdout
    p = run_tarnd("--version")
    assert p.returncode == 0 and p.stdout.startswith("tarnd ")
    p = run_tarnd("--bogus")
    assert p.returncode == 2 and "unknown option --bogus" in p.stderr
    p = run_tarnd("-c")
    assert p.returncode == 2 and "needs a value" in p.stderr


def test_conf_file_matches_the_table():
    """conf/tarnd.conf is generated from the key table and kept in step."""
    p = run_tarnd("--print-config")
    assert p.returncode == 0
    assert (ROOT / "conf" / "tarnd.conf").read_text() == p.stdout
    p = run_tarnd("-c", str(ROOT / "conf" / "tarnd.conf"), "--check-config")
    assert p.returncode == 0
    assert "http_listen = 127.0.0.1:9898" in p.stdout
    assert "page_listen = 127.0.0.1:6400" in p.stdout


def test_bad_config_fails_with_one_line(tmp_path):
    conf = tmp_path / "bad.conf"
    cases = [
        ("[x]\nlog_level = info\nworker_threads = 0\n",
         f"tarnd: {conf}:3: key 'worker_threads': value '0' is out of range "
         "[1, 64]"),
        ("no_such_key = 1\n", f"tarnd: {conf}:1: unknown key 'no_such_key'"),
        ("http_listen = 9898\n", f"tarnd: {conf}:1: key 'http_listen': "
                                 "invalid address '9898'"),
        ("just words\n", f"tarnd: {conf}:1: syntax error"),
    ]
    for text, first in cases:
        conf.write_text(text)
        p = run_tarnd("-c", str(conf), "--set", f"data_dir={tmp_path}/d")
        assert p.returncode == 2, p
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1, p.stderr
        assert lines[0].startswith(first), (lines[0], first)
    p = run_tarnd("--set", "checkpoint_distancex=1")
    assert p.returncode == 2
    assert p.stderr == ("tarnd: --set checkpoint_distancex: unknown key "
                        "'checkpoint_distancex'\n")
    p = run_tarnd("-c", str(tmp_path / "missing.conf"))
    assert p.returncode == 2 and "cannot read config file" in p.stderr
    # Nothing was created by the failed starts.
    assert not (tmp_path / "d").exists()


def test_restart_keeps_everything(tarnd):
    t = tarnd.create_tenant(name="keep")
    main = tarnd.create_timeline(t["id"], name="main")
    dev = tarnd.create_timeline(t["id"], name="dev",
                                ancestor_timeline_id=main["timeline_id"])
    before = (tarnd.get("/v1/tenant").json,
              tarnd.get(f"/v1/tenant/{t['id']}/timeline").json)
    assert tarnd.stop() == 0
    assert "stopped cleanly" in tarnd.log_text()
    tarnd.start()
    after = (tarnd.get("/v1/tenant").json,
             tarnd.get(f"/v1/tenant/{t['id']}/timeline").json)
    assert before == after
    assert dev in after[1]
    assert "catalog: 1 tenant(s), 2 timeline(s), checked" in tarnd.log_text()


def test_second_tarnd_is_refused(tarnd, tmp_path):
    other = Tarnd(tmp_path)
    other.sets["data_dir"] = str(tarnd.data_dir)
    p = subprocess.run(other.argv(), capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 2
    assert p.stderr.strip() == (
        f"tarnd: data directory {tarnd.data_dir} is in use by another "
        f"tarnd (pid {tarnd.proc.pid})")
    # The first one is unharmed.
    assert tarnd.get("/v1/status").status == 200


def test_data_dir_checks(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("not tarn's")
    p = run_tarnd("--set", f"data_dir={foreign}", "--set",
                  "http_listen=127.0.0.1:1")
    assert p.returncode == 2
    assert "is not empty and is not a tarn data directory" in p.stderr
    assert sorted(x.name for x in foreign.iterdir()) == ["precious.txt",
                                                         "tarnd.pid"]

    future = tmp_path / "future"
    future.mkdir()
    (future / "LAYOUT_VERSION").write_text("99\n")
    p = run_tarnd("--set", f"data_dir={future}")
    assert p.returncode == 2
    assert "layout version 99; this tarnd reads version 1" in p.stderr


def test_address_in_use(tarnd, tmp_path):
    p = run_tarnd("--set", f"data_dir={tmp_path}/d2", "--set",
                  f"http_listen=127.0.0.1:{tarnd.port}")
    assert p.returncode == 2
    assert f"cannot listen on 127.0.0.1:{tarnd.port}" in p.stderr
    assert "in use" in p.stderr


def test_sigint_and_sigterm_stop_cleanly(make_tarnd):
    for sig in (signal.SIGINT, signal.SIGTERM):
        t = make_tarnd(sub=sig.name)
        t.create_tenant()
        assert t.stop(sig) == 0
        assert f"{sig.name}: stopping" in t.log_text()
        assert "stopped cleanly" in t.log_text()


def test_sigterm_finishes_open_request(make_tarnd):
    """A request that is mid-flight when SIGTERM lands is still answered."""
    import socket
    t = make_tarnd()
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
    body = b'{"name": "late"}'
    s.sendall(b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body[:5])
    time.sleep(0.2)
    t.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    assert t.proc.poll() is None  # waiting for our request
    s.sendall(body[5:])
    data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 201"), data
    assert b"Connection: close" in data
    s.close()
    assert t.proc.wait(10) == 0
    t.start()
    assert [x["name"] for x in t.get("/v1/tenant").json] == ["late"]


def test_sighup_reload(make_tarnd, tmp_path):
    conf = tmp_path / "live.conf"
    conf.write_text("log_level = info\n")
    t = make_tarnd(config=conf)
    del t.sets["log_level"]
    t.stop()
    t.start()
    conf.write_text("log_level = debug\nworker_threads = 9\n")
    t.proc.send_signal(signal.SIGHUP)
    t.wait_log("reload: log_level = debug")
    text = t.log_text()
    assert ("reload: worker_threads changed, but only a restart applies it; "
            "keeping 4") in text
    conf.write_text("log_level = nonsense\n")
    t.proc.send_signal(signal.SIGHUP)
    t.wait_log("reload failed")
    assert "keeping the running configuration" in t.log_text()
    assert t.get("/v1/status").status == 200


def test_log_file_and_reopen(make_tarnd, tmp_path):
    log = tmp_path / "tarnd.log"
    t = make_tarnd({"log_file": str(log)})
    t.get("/v1/nothing-here")
    assert "ready: admin API" in log.read_text()
    log.rename(tmp_path / "tarnd.log.1")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: log.exists() and "reload" in log.read_text(),
               why="the reopened log stays empty")
    assert "ready: admin API" not in log.read_text()
