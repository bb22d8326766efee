"""Every admin route, with good and bad input, against a real tarnd."""
import re

ID0 = "0" * 32


def test_status_and_version(tarnd):
    r = tarnd.get("/v1/status")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    j = r.json
    assert j["status"] == "ok"
    assert re.match(r"^\d+\.\d+\.\d+$", j["version"])
    assert j["uptime_seconds"] >= 0
    assert j["started_at"].endswith("Z")


def test_tenant_crud(tarnd):
    a = tarnd.create_tenant()
    assert re.fullmatch(r"[0-9a-f]{32}", a["id"])
    assert a["name"] is None
    b = tarnd.create_tenant(new_tenant_id="ab" * 16, name="default")
    assert b["id"] == "ab" * 16 and b["name"] == "default"

    r = tarnd.post("/v1/tenant", {"new_tenant_id": "AB" * 16})
    assert r.status == 409 and "already exists" in r.msg
    r = tarnd.post("/v1/tenant", {"name": "default"})
    assert r.status == 409 and "named 'default'" in r.msg

    listed = tarnd.get("/v1/tenant").json
    assert sorted(t["id"] for t in listed) == sorted([a["id"], b["id"]])

    r = tarnd.get(f"/v1/tenant/{b['id']}")
    assert r.status == 200
    assert r.json["name"] == "default" and r.json["timelines"] == []
    assert tarnd.get(f"/v1/tenant/{ID0}").status == 404
    r = tarnd.get("/v1/tenant/not-an-id")
    assert r.status == 400 and "invalid tenant id" in r.msg

    assert tarnd.delete(f"/v1/tenant/{a['id']}").status == 200
    assert tarnd.get(f"/v1/tenant/{a['id']}").status == 404
    assert tarnd.delete(f"/v1/tenant/{a['id']}").status == 404


def test_tenant_create_validation(tarnd):
    cases = [
        ("{", 400, "malformed JSON"),
        ("[]", 400, "must be a JSON object"),
        ('{"id": "x"}', 400, "unknown field 'id'"),
        ('{"name": 7}', 400, "must be a name string"),
        ('{"name": "has space"}', 400, "invalid name"),
        ('{"name": "' + "a" * 64 + '"}', 400, "1 to 63"),
        ('{"new_tenant_id": "123"}', 400, "invalid id"),
        ('{"name": "x", "name": "y"}', 400, "duplicate"),
        (b'{"name": "\xff"}', 400, "malformed JSON"),
    ]
    for body, status, needle in cases:
        r = tarnd.post("/v1/tenant", body)
        assert r.status == status, (body, r)
        assert needle in r.msg, (body, r)
    # An empty body is an empty object.
    assert tarnd.post("/v1/tenant", "").status == 201
    # Nothing half-made by the failures.
    assert len(tarnd.get("/v1/tenant").json) == 1


def test_body_too_large_is_json_413(tarnd):
    r = tarnd.post("/v1/tenant", "x" * (1024 * 1024 + 1))
    assert r.status == 413
    assert "exceeds the limit of 1048576 bytes" in r.msg
    # Exactly the limit is read and judged on its content.
    body = '{"name": "big"' + " " * (1024 * 1024 - 15) + "}"
    assert len(body) == 1024 * 1024
    assert tarnd.post("/v1/tenant", body).status == 201
    assert tarnd.get("/v1/status").status == 200


def test_timeline_crud_and_branching(tarnd):
    t = tarnd.create_tenant()["id"]
    base = f"/v1/tenant/{t}/timeline"
    main = tarnd.create_timeline(t, name="main", bootstrap="none")
    assert main["state"] == "empty"
    assert main["ancestor_timeline_id"] is None
    assert main["ancestor_lsn"] is None
    for f in ("last_record_lsn", "wal_flush_lsn", "disk_consistent_lsn",
              "remote_consistent_lsn"):
        assert main[f] == "0/0"
    assert main["tenant_id"] == t and main["name"] == "main"

    dev = tarnd.create_timeline(t, name="dev",
                                ancestor_timeline_id=main["timeline_id"])
    assert dev["ancestor_timeline_id"] == main["timeline_id"]
    assert dev["ancestor_lsn"] == "0/0"
    explicit = tarnd.create_timeline(
        t, name="explicit", new_timeline_id="cd" * 16,
        ancestor_timeline_id=dev["timeline_id"], ancestor_start_lsn="0/0")
    assert explicit["timeline_id"] == "cd" * 16

    r = tarnd.post(base, {"ancestor_timeline_id": main["timeline_id"],
                          "ancestor_start_lsn": "0/16B5A50"})
    assert r.status == 400
    assert "beyond the ancestor's last_record_lsn 0/0" in r.msg
    r = tarnd.post(base, {"ancestor_timeline_id": main["timeline_id"],
                          "ancestor_start_lsn": "bogus"})
    assert r.status == 400 and "invalid LSN" in r.msg
    r = tarnd.post(base, {"ancestor_timeline_id": ID0})
    assert r.status == 404 and "ancestor timeline" in r.msg
    r = tarnd.post(base, {"name": "dev"})
    assert r.status == 409 and "branch named 'dev'" in r.msg
    r = tarnd.post(base, {"new_timeline_id": "cd" * 16})
    assert r.status == 409
    r = tarnd.post(base, {"ancestor_timeline_id": main["timeline_id"],
                          "ancestor_start_time": "2026-01-01T00:00:00Z"})
    assert r.status == 412 and "no commit records" in r.msg
    r = tarnd.post(base, {"ancestor_timeline_id": main["timeline_id"],
                          "ancestor_start_time": "yesterday"})
    assert r.status == 400 and "RFC 3339" in r.msg
    r = tarnd.post(base, {"ancestor_start_lsn": "0/0"})
    assert r.status == 400 and "needs ancestor_timeline_id" in r.msg
    r = tarnd.post(base, {"pg_version": 16})
    assert r.status == 400 and "PostgreSQL 15" in r.msg
    r = tarnd.post(f"/v1/tenant/{ID0}/timeline", {})
    assert r.status == 404 and "tenant" in r.msg

    listed = tarnd.get(base).json
    assert {x["name"] for x in listed} == {"main", "dev", "explicit"}
    got = tarnd.get(f"{base}/{dev['timeline_id']}")
    assert got.status == 200 and got.json == dev
    assert tarnd.get(f"{base}/{ID0}").status == 404
    r = tarnd.get(f"{base}/xyz")
    assert r.status == 400 and "invalid timeline id" in r.msg
    assert tarnd.get(f"/v1/tenant/{ID0}/timeline").status == 404

    # The children rule: 409 naming the children, leaves first.
    r = tarnd.delete(f"{base}/{main['timeline_id']}")
    assert r.status == 409
    assert "dev (" + dev["timeline_id"] + ")" in r.msg
    r = tarnd.delete(f"{base}/{dev['timeline_id']}")
    assert r.status == 409 and "explicit" in r.msg
    for tl in (explicit, dev, main):
        assert tarnd.delete(f"{base}/{tl['timeline_id']}").status == 200
    assert tarnd.get(base).json == []
    assert tarnd.get(f"/v1/tenant/{t}").json["timelines"] == []


def test_data_routes_validate_then_need_data(tarnd):
    t = tarnd.create_tenant()["id"]
    tl = tarnd.create_timeline(t, name="main",
                               bootstrap="none")["timeline_id"]
    base = f"/v1/tenant/{t}/timeline/{tl}"
    gp = "spc=1663&db=5&rel=1259&fork=main&blk=0"

    # A timeline without data (no bootstrap, no compute yet).
    for method, path, status, needle in (
            ("PUT", "/checkpoint", 412, "has no data to checkpoint"),
            ("PUT", "/compact", 501, "compaction is not implemented"),
            ("PUT", "/do_gc", 501, "garbage collection is not implemented"),
            ("GET", "/getpage?" + gp, 412, "has no data yet"),
            ("GET", "/rel_size?" + gp[:-6], 412, "has no data yet"),
            ("GET", "/db_size?spc=1663&db=5", 412, "has no data yet")):
        r = tarnd.request(method, base + path)
        assert r.status == status, (path, r)
        assert needle in r.msg, (path, r)
        r = tarnd.request(method, f"/v1/tenant/{t}/timeline/{ID0}{path}")
        assert r.status == 404, (path, r)
    r = tarnd.get(base + "/get_lsn_by_timestamp?timestamp="
                  "2026-11-21T10%3A00%3A00%2B01%3A00")
    assert r.status == 200 and r.json["kind"] == "nodata", r

    assert tarnd.put(base + "/checkpoint", {}).status == 412
    assert tarnd.get(base + "/getpage?" + gp + "&lsn=latest").status == 412
    r = tarnd.put(base + "/checkpoint", {"now": True})
    assert r.status == 400 and "unknown field 'now'" in r.msg, r
    r = tarnd.put(base + "/checkpoint", {"images": "no"})
    assert r.status == 400 and "'images' must be true or false" in r.msg, r
    r = tarnd.put(base + "/compact", {"now": True})
    assert r.status == 400 and "no body" in r.msg, r
    r = tarnd.put(base + "/do_gc", "{")
    assert r.status == 400 and "malformed JSON" in r.msg

    bad = [
        ("spc=1663&db=5&rel=1259&fork=main", "missing query parameter 'blk'"),
        ("spc=1663&db=5&rel=1259&fork=main&blk=-1", "must be an integer"),
        ("spc=1663&db=5&rel=1259&fork=main&blk=4294967296",
         "must be an integer"),
        ("spc=1663&db=5&rel=1259&fork=heap&blk=0", "'fork' must be"),
        (gp + "&lsn=12", "invalid LSN"),
        ("spc=%zz&db=5&rel=1259&fork=main&blk=0", "malformed"),
    ]
    for q, needle in bad:
        r = tarnd.get(f"{base}/getpage?{q}")
        assert r.status == 400, (q, r)
        assert needle in r.msg, (q, r)
    r = tarnd.get(f"{base}/get_lsn_by_timestamp")
    assert r.status == 400 and "missing query parameter 'timestamp'" in r.msg
    r = tarnd.get(f"{base}/get_lsn_by_timestamp?timestamp=2026-11-21")
    assert r.status == 400 and "RFC 3339" in r.msg


def test_unknown_route_and_method(tarnd):
    r = tarnd.get("/v2/nothing")
    assert r.status == 404
    assert "no route for GET /v2/nothing" in r.msg
    assert "POST /v1/tenant/{t}/timeline" in r.msg
    r = tarnd.post("/v1/status")
    assert r.status == 405
    assert r.headers["Allow"] == "GET"
    assert "allowed: GET" in r.msg
    r = tarnd.request("PATCH", "/v1/tenant")
    assert r.status == 405 and r.headers["Allow"] == "POST, GET"
    # A trailing slash names the same route.
    assert tarnd.get("/v1/tenant/").status == 200


def test_metrics(tarnd):
    tarnd.create_tenant()
    tarnd.get("/v1/nope")
    text = tarnd.get("/metrics").body
    assert 'tarn_build_info{version="' in text
    assert re.search(r"^tarn_uptime_seconds \d+\.\d+$", text, re.M)
    assert ('tarn_http_requests_total{method="POST",route="/v1/tenant",'
            'status="201"} 1') in text
    assert 'route="unmatched",status="404"} 1' in text
    m = re.search(r'tarn_catalog_transactions_total\{kind="write",'
                  r'result="commit"\} (\d+)', text)
    assert m and int(m.group(1)) >= 2  # schema + tenant
    assert "tarn_catalog_map_size_bytes" in text
    assert "tarn_worker_threads 4" in text
    assert re.search(r"^tarn_process_resident_memory_bytes [1-9]\d*$", text,
                     re.M)
    # Every sample line belongs to a declared metric.
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)", text, re.M))
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = re.split(r"[{ ]", line)[0]
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in declared or declared.get(base) == "histogram", \
                line
