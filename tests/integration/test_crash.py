"""kill -9 during a stream of catalog writes loses no acknowledged write.

Each round sends 1,000 tenant and branch creations from four concurrent
clients, and a SIGKILL lands at a random moment during them.  After the
restart, every creation answered 201 must be there exactly as requested,
creations that were in flight may or may not be there (but if they are,
they are exactly as requested), and the catalog must be consistent.
"""
import http.client
import json
import os
import random
import threading
import time

ROUNDS = 5
PER_ROUND = 1000
CLIENTS = 4


class Creator(threading.Thread):
    def __init__(self, t, plan, lock, rnd):
        super().__init__(daemon=True)
        self.t, self.plan, self.lock, self.rnd = t, plan, lock, rnd

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.t.port,
                                          timeout=10)
        while True:
            with self.lock:
                op = self.plan.next_op(self.rnd)
            if op is None:
                return
            path, body, record = op
            try:
                conn.request("POST", path, json.dumps(body),
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except OSError:
                return  # tarnd was killed
            with self.lock:
                if r.status == 201:
                    self.plan.acked(record)
                else:
                    raise AssertionError((r.status, data, body))


class Plan:
    """Hands out creations and remembers what was acknowledged."""

    def __init__(self, rnd_name):
        self.tag = rnd_name
        self.left = 0
        self.tenants = []          # acked tenant ids
        self.timelines = {}        # tenant -> [acked timeline ids]
        self.expect = {}           # id -> what was requested (acked)
        self.maybe = {}            # id -> requested, answer not seen
        self.n = 0

    def next_op(self, rnd):
        if self.left == 0:
            return None
        self.left -= 1
        self.n += 1
        oid = os.urandom(16).hex()
        if not self.tenants or rnd.random() < 0.1:
            rec = ("tenant", oid, None, f"t{self.tag}-{self.n}", None)
            body = {"new_tenant_id": oid, "name": rec[3]}
            path = "/v1/tenant"
        else:
            tenant = rnd.choice(self.tenants)
            parents = self.timelines[tenant]
            parent = rnd.choice(parents) if parents and rnd.random() < 0.8 \
                else None
            rec = ("timeline", oid, tenant, f"b{self.tag}-{self.n}", parent)
            body = {"new_timeline_id": oid, "name": rec[3]}
            if parent:
                body["ancestor_timeline_id"] = parent
            path = f"/v1/tenant/{tenant}/timeline"
        self.maybe[oid] = rec
        return path, body, rec

    def acked(self, rec):
        kind, oid, tenant = rec[0], rec[1], rec[2]
        self.maybe.pop(oid, None)
        self.expect[oid] = rec
        if kind == "tenant":
            self.tenants.append(oid)
            self.timelines[oid] = []
        else:
            self.timelines[tenant].append(oid)


def check(t, plan):
    tenants = {x["id"]: x for x in t.get("/v1/tenant").json}
    timelines = {}
    for tid in tenants:
        r = t.get(f"/v1/tenant/{tid}/timeline")
        assert r.status == 200
        names = set()
        listed = {x["timeline_id"]: x for x in r.json}
        for x in r.json:
            assert x["name"] not in names, "duplicate branch name"
            names.add(x["name"])
            anc = x["ancestor_timeline_id"]
            assert anc is None or anc in listed, "dangling ancestor"
            timelines[x["timeline_id"]] = x
    for oid, rec in plan.expect.items():
        kind, _, tenant, name, parent = rec
        if kind == "tenant":
            assert oid in tenants, f"acknowledged tenant {oid} lost"
            assert tenants[oid]["name"] == name
        else:
            assert oid in timelines, f"acknowledged timeline {oid} lost"
            got = timelines[oid]
            assert got["tenant_id"] == tenant and got["name"] == name
            assert got["ancestor_timeline_id"] == parent
    for oid, rec in list(plan.maybe.items()):
        kind, _, tenant, name, parent = rec
        if kind == "tenant" and oid in tenants:
            assert tenants[oid]["name"] == name
            plan.acked(rec)  # it exists: later rounds may build on it
        elif kind == "timeline" and oid in timelines:
            assert timelines[oid]["name"] == name
            assert timelines[oid]["ancestor_timeline_id"] == parent
            plan.acked(rec)
    plan.maybe.clear()
    return len(tenants), len(timelines)


def test_kill9_during_creations(make_tarnd):
    rnd = random.Random(int(os.environ.get("TARN_CRASH_SEED", time.time())))
    t = make_tarnd()
    plan = Plan("x")
    lock = threading.Lock()
    killed_mid_stream = 0
    for rnd_no in range(ROUNDS):
        plan.left = PER_ROUND
        plan.tag = str(rnd_no)
        start = time.time()
        workers = [Creator(t, plan, lock, random.Random(rnd.random()))
                   for _ in range(CLIENTS)]
        for w in workers:
            w.start()
        # A random moment inside the stream (1,000 creations take about
        # a second here); the late rounds may land after it, which is
        # fine too.
        time.sleep(rnd.uniform(0.02, 0.6))
        t.kill9()
        for w in workers:
            w.join(20)
            assert not w.is_alive()
        if plan.left > 0:
            killed_mid_stream += 1
        sent = PER_ROUND - plan.left
        t.start()
        n_tenants, n_timelines = check(t, plan)
        assert "checked" in t.log_text()
        print(f"round {rnd_no}: {sent} sent in {time.time() - start:.2f}s, "
              f"{len(plan.expect)} acknowledged so far; catalog has "
              f"{n_tenants} tenants, {n_timelines} timelines")
    assert killed_mid_stream >= 1, "the kill never landed mid-stream"
    t.stop()
