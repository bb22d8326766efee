"""Bearer-token auth: on and off, and changed by SIGHUP."""
import signal

from conftest import wait_until


def test_no_token_means_open(tarnd):
    assert tarnd.get("/v1/tenant").status == 200
    assert tarnd.get("/metrics").status == 200


def test_token_required_everywhere_but_status(make_tarnd):
    t = make_tarnd({"http_auth_token": "s3cret"})
    t1 = t.post("/v1/tenant", {}, token="s3cret").json["id"]
    routes = [("GET", "/metrics"), ("GET", "/v1/tenant"),
              ("POST", "/v1/tenant"), ("GET", f"/v1/tenant/{t1}"),
              ("DELETE", f"/v1/tenant/{t1}"),
              ("GET", f"/v1/tenant/{t1}/timeline"),
              ("POST", f"/v1/tenant/{t1}/timeline")]
    for method, path in routes:
        r = t.request(method, path)
        assert r.status == 401, (method, path, r)
        assert "authentication required" in r.msg
        assert r.headers["WWW-Authenticate"] == "Bearer"
        r = t.request(method, path, token="wrong")
        assert r.status == 401 and "invalid bearer token" in r.msg
        r = t.request(method, path, headers={"Authorization": "Basic eDp5"})
        assert r.status == 401 and "scheme" in r.msg
    # /v1/status stays open, for health checks.
    assert t.get("/v1/status").status == 200
    # With the token, everything works.
    t.token = "s3cret"
    assert t.get("/metrics").status == 200
    assert t.get(f"/v1/tenant/{t1}").status == 200
    # Nothing was created or deleted by the refused calls.
    assert len(t.get("/v1/tenant").json) == 1


def test_sighup_changes_token(make_tarnd, tmp_path):
    conf = tmp_path / "tarnd.conf"
    conf.write_text("http_auth_token = first\n")
    t = make_tarnd(config=conf)
    assert t.get("/v1/tenant", token="first").status == 200
    conf.write_text("http_auth_token = second\n")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: t.get("/v1/tenant", token="second").status == 200,
               why=t.log_text)
    assert t.get("/v1/tenant", token="first").status == 401
    conf.write_text("")
    t.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: t.get("/v1/tenant", token="").status == 200,
               why=t.log_text)
    assert "reload: http_auth_token" in t.log_text()
    assert "second" not in t.log_text()  # secrets are never logged
