"""The admin listener's HTTP framing, limits and connection handling, over
raw sockets: every error is answered with a JSON body, and the server keeps
serving others."""
import json
import socket
import time

from conftest import read_all


def parse_responses(data):
    """Split raw bytes into (status, headers, body) responses."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def one(tarnd, data):
    resp = parse_responses(tarnd.raw(data))
    assert len(resp) == 1, resp
    status, headers, body = resp[0]
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)["msg"], headers


def test_malformed_requests_get_json_errors(tarnd):
    cases = [
        (b"garbage\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "without Host"),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "unsupported HTTP"),
        (b"GET /v1/status HTTP/1.1\nHost: x\n\n", 400, "CRLF"),
        (b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "chunked"),
        (b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         b"Content-Length: 5\r\n\r\nhello", 400, "Content-Length"),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: "
         + b"a" * 20000 + b"\r\n\r\n", 431, "too large"),
        (b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\nContent-Length: "
         b"999999999\r\n\r\n", 413, "exceeds the limit"),
    ]
    for data, status, needle in cases:
        got, msg, headers = one(tarnd, data)
        assert got == status, (data[:60], got, msg)
        assert needle in msg, (data[:60], msg)
        assert headers["connection"] == "close"
    assert tarnd.get("/v1/status").status == 200


def test_head_without_end_is_431_not_a_hang(tarnd):
    # No blank line ever comes: the server answers once the limit passes.
    got, msg, _ = one(tarnd, b"GET / HTTP/1.1\r\nHost: x\r\n"
                      + b"X: y\r\n" * 4000)
    assert got == 431


def test_keep_alive_and_pipelining(tarnd):
    reqs = (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n"
            b"\r\n{\"name\": \"p1\"}"
            b"GET /v1/tenant HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = parse_responses(tarnd.raw(reqs))
    assert [r[0] for r in resp] == [200, 201, 200]
    assert resp[0][1]["connection"] == "keep-alive"
    assert resp[2][1]["connection"] == "close"
    assert json.loads(resp[2][2])[0]["name"] == "p1"


def test_request_split_across_writes(tarnd):
    req = (b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n"
           b"Connection: close\r\n\r\n{\"name\": \"sp\"}")
    with socket.create_connection(("127.0.0.1", tarnd.port)) as s:
        for i in range(len(req)):
            s.sendall(req[i:i + 1])
            if i % 7 == 0:
                time.sleep(0.001)
        data = read_all(s)
    (status, _, body), = parse_responses(data)
    assert status == 201 and json.loads(body)["name"] == "sp"


def test_expect_100_continue(tarnd):
    body = b'{"name": "cont"}'
    with socket.create_connection(("127.0.0.1", tarnd.port), timeout=5) as s:
        s.sendall(b"POST /v1/tenant HTTP/1.1\r\nHost: x\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(body)
        data = read_all(s)
    assert parse_responses(data)[0][0] == 201


def test_http_1_0_closes(tarnd):
    (status, headers, _), = parse_responses(
        tarnd.raw(b"GET /v1/status HTTP/1.0\r\n\r\n"))
    assert status == 200 and headers["connection"] == "close"


def test_connection_limit(make_tarnd):
    t = make_tarnd({"http_max_connections": "2"})
    time.sleep(0.3)  # the readiness probe's connection is gone
    held = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")  # held open
        held.append(s)
    (status, _, body), = parse_responses(
        t.raw(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 503 and b"too many connections" in body
    for s in held:
        s.close()
    time.sleep(0.2)
    assert t.get("/v1/status").status == 200


def test_idle_timeout(make_tarnd):
    t = make_tarnd({"http_idle_timeout": "1s"})
    with socket.create_connection(("127.0.0.1", t.port), timeout=10) as s:
        start = time.time()
        s.sendall(b"GET /v1/sta")  # a request that never completes
        assert s.recv(100) == b""  # closed by the server
        assert 0.8 < time.time() - start < 5


def test_random_bytes_do_not_hurt(tarnd):
    import random
    rnd = random.Random(1234)
    for _ in range(200):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400)))
        try:
            tarnd.raw(data + b"\r\n\r\n", timeout=3)
        except OSError:
            pass
    assert tarnd.get("/v1/status").status == 200
    assert tarnd.proc.poll() is None
