"""docs/api.md matches the server: every documented route answers as
documented, and the server has no undocumented route."""
import re

from conftest import ROOT

ROW = re.compile(r"^\| (GET|POST|PUT|DELETE) \| `([^`]+)` \| (yes|no) \| "
                 r"(\d{3}) \|")


def documented():
    rows = []
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m.group(1), m.group(2), m.group(3) == "yes",
                         int(m.group(4))))
    return rows


def test_every_documented_route(make_tarnd):
    rows = documented()
    assert len(rows) >= 15
    t = make_tarnd({"http_auth_token": "doc"})
    t.token = "doc"
    tenant = t.create_tenant()["id"]
    tl = t.create_timeline(tenant, name="main")["timeline_id"]
    # Run deletions last, on objects made for them.
    rows.sort(key=lambda r: r[0] == "DELETE")
    for method, path, auth, success in rows:
        if method == "DELETE" and path.endswith("{t}"):
            target_t = t.create_tenant()["id"]
            concrete = path.replace("{t}", target_t)
        elif method == "DELETE":
            leaf = t.create_timeline(
                tenant, ancestor_timeline_id=tl)["timeline_id"]
            concrete = path.replace("{t}", tenant).replace("{tl}", leaf)
        else:
            concrete = path.replace("{t}", tenant).replace("{tl}", tl)
        concrete = concrete.replace("+", "%2B")
        if auth:
            r = t.request(method, concrete, token="")
            assert r.status == 401, (method, path, r)
        r = t.request(method, concrete)
        assert r.status == success, (method, path, r)


def test_no_undocumented_routes(tarnd):
    msg = tarnd.get("/no/such/route").msg
    served = set(re.findall(r"(GET|POST|PUT|DELETE) (/\S+?)(?:,|$)", msg))
    docs = {(m, p.split("?")[0]) for m, p, _, _ in documented()}
    assert served == docs
