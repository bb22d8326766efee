"""The tarn command-line client against a real tarnd."""
import json
import re

from conftest import free_port


def test_status(tarnd):
    p = tarnd.cli("status")
    assert re.fullmatch(rf"tarnd \S+ at {tarnd.url}: ok, up \d+s\n",
                        p.stdout)
    j = json.loads(tarnd.cli("--json", "status").stdout)
    assert j["status"] == "ok"


def test_unreachable_server_names_the_address():
    port = free_port()
    from conftest import TARN
    import os
    import subprocess
    env = dict(os.environ, TARN_HTTP=f"http://127.0.0.1:{port}")
    p = subprocess.run([str(TARN), "status"], capture_output=True, text=True,
                       env=env)
    assert p.returncode == 1
    assert p.stderr.startswith(
        f"tarn: cannot reach tarnd at http://127.0.0.1:{port}: ")
    assert len(p.stderr.strip().splitlines()) == 1


def test_tenants(tarnd):
    p = tarnd.cli("tenant", "list")
    assert p.stdout == "no tenants\n"
    p = tarnd.cli("tenant", "create", "--name", "default")
    m = re.fullmatch(r"created tenant ([0-9a-f]{32}) \(default\)\n", p.stdout)
    assert m
    tid = m.group(1)
    p = tarnd.cli("tenant", "create", "--id", "ab" * 16)
    assert p.stdout == f"created tenant {'ab' * 16}\n"
    p = tarnd.cli("tenant", "list")
    assert tid in p.stdout and "default" in p.stdout and "ab" * 16 in p.stdout
    listed = json.loads(tarnd.cli("--json", "tenant", "list").stdout)
    assert len(listed) == 2
    p = tarnd.cli("tenant", "create", "--name", "default", check=False)
    assert p.returncode == 1
    assert p.stderr == ("tarn: POST /v1/tenant failed (409): a tenant named "
                        "'default' already exists\n")
    p = tarnd.cli("tenant", "delete", "default")
    assert p.stdout == f"deleted tenant {tid}\n"


def test_branches_tree(tarnd):
    p = tarnd.cli("branch", "list", check=False)
    assert p.returncode == 1 and "no tenant yet" in p.stderr
    tarnd.cli("tenant", "create", "--name", "default")
    tarnd.cli("tenant", "create", "--name", "other")
    p = tarnd.cli("branch", "create", "main")
    m = re.fullmatch(r"created root branch main \([0-9a-f]{32}\), "
                     r"state active at (\d+/[0-9A-F]+)\n", p.stdout)
    assert m, p.stdout
    start = m.group(1)
    p = tarnd.cli("branch", "create", "dev")  # parent defaults to main
    assert re.fullmatch(r"created branch dev \([0-9a-f]{32}\) at "
                        + start + r"\n", p.stdout)
    tarnd.cli("branch", "create", "feature", "--parent", "dev", "--lsn",
              start)
    tarnd.cli("branch", "create", "test")
    p = tarnd.cli("branch", "create", "other-root", "--empty")
    assert re.fullmatch(r"created root branch other-root \([0-9a-f]{32}\), "
                        r"state empty\n", p.stdout)
    out = tarnd.cli("branch", "list").stdout.splitlines()
    assert re.fullmatch(r"main \[[0-9a-f]{32}\] active, last " + start,
                        out[0])
    assert re.fullmatch(r"├─ dev @" + start + r" \[[0-9a-f]{32}\] active, "
                        r"last " + start, out[1])
    assert re.fullmatch(r"│  └─ feature @" + start + r" \[[0-9a-f]{32}\] "
                        r"active, last " + start, out[2])
    assert re.fullmatch(r"└─ test @" + start + r" \[[0-9a-f]{32}\] active, "
                        r"last " + start, out[3])
    assert re.fullmatch(r"other-root \[[0-9a-f]{32}\] empty, last 0/0",
                        out[4])
    assert len(out) == 5

    # Errors are one line with a non-zero exit.
    p = tarnd.cli("branch", "create", "x", "--parent", "nope", check=False)
    assert (p.returncode, p.stderr) == (
        1, "tarn: no branch named 'nope' (see `tarn branch list`)\n")
    p = tarnd.cli("branch", "create", "x", "--lsn", "F/10", check=False)
    assert p.returncode == 1
    assert "beyond the ancestor's last_record_lsn " + start in p.stderr
    p = tarnd.cli("branch", "create", "x", "--lsn", "0/10", check=False)
    assert p.returncode == 1 and "before the start of" in p.stderr
    p = tarnd.cli("branch", "create", "x", "--import", "/nonexistent",
                  check=False)
    assert p.returncode == 1 and "No such file" in p.stderr
    p = tarnd.cli("branch", "delete", "dev", check=False)
    assert p.returncode == 1 and "child branch: feature" in p.stderr
    assert tarnd.cli("branch", "delete", "feature").stdout.startswith(
        "deleted branch feature (")
    # The other tenant is separate, and chosen by --tenant.
    assert tarnd.cli("--tenant", "other", "branch", "list").stdout == \
        "no branches\n"
    tree = json.loads(tarnd.cli("--json", "branch", "list").stdout)
    assert {x["name"] for x in tree} == {"main", "dev", "test", "other-root"}


def test_tenant_choice(tarnd):
    tarnd.cli("tenant", "create", "--name", "a")
    tarnd.cli("tenant", "create", "--name", "b")
    p = tarnd.cli("branch", "list", check=False)
    assert p.returncode == 1
    assert "2 tenants exist and none is named 'default'" in p.stderr
    p = tarnd.cli("--tenant", "c", "branch", "list", check=False)
    assert "no tenant named 'c'" in p.stderr
    assert tarnd.cli("--tenant=a", "branch", "list").returncode == 0


def test_usage(tarnd):
    p = tarnd.cli("--help")
    assert "branch create NAME" in p.stdout and "TARN_HTTP" in p.stdout
    p = tarnd.cli("frobnicate", check=False)
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr
    p = tarnd.cli("branch", "create", "--lsn", check=False)
    assert p.returncode == 2 and "--lsn needs a value" in p.stderr
    p = tarnd.cli("--version")
    assert p.stdout.startswith("tarn ")


def test_token(make_tarnd):
    t = make_tarnd({"http_auth_token": "tok"})
    p = t.cli("tenant", "list", check=False)
    assert p.returncode == 1 and "(401)" in p.stderr
    t.token = "tok"
    assert t.cli("tenant", "list").stdout == "no tenants\n"
