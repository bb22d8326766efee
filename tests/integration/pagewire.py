"""A small client of tarn's page service for the tests: the PostgreSQL v3
protocol over a raw socket (startup, SSLRequest, trust and SCRAM-SHA-256,
simple and extended queries) and Neon's pagestream v2/v3 messages.

It is written from the protocol descriptions, not from tarn's code, so the
tests check tarn against the layouts of docs/protocols.md.
"""
import base64
import hashlib
import hmac
import os
import socket
import struct

LSN_MAX = (1 << 64) - 1
BLCKSZ = 8192

EXISTS, NBLOCKS, GETPAGE, DBSIZE, SLRU = 0, 1, 2, 3, 4
R_EXISTS, R_NBLOCKS, R_GETPAGE, R_ERROR, R_DBSIZE, R_SLRU = range(100, 106)


class ProtocolError(Exception):
    pass


class ServerError(Exception):
    """An ErrorResponse: fields by their one-letter codes."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__(f"{fields.get('S')} {fields.get('C')}: "
                         f"{fields.get('M')}")

    @property
    def sqlstate(self):
        return self.fields.get("C")

    @property
    def severity(self):
        return self.fields.get("S")

    @property
    def message(self):
        return self.fields.get("M")


def parse_error(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode()
    return fields


def startup_packet(user="tarn", database="postgres", **params):
    body = struct.pack(">I", 196608)
    for k, v in [("user", user), ("database", database), *params.items()]:
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack(">I", len(body) + 4) + body


def msg(type_, body=b""):
    return type_ + struct.pack(">I", len(body) + 4) + body


def scram_verifier(password, salt=b"tarn-test-salt!!", iterations=4096):
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 iterations)
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    sk = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return (f"SCRAM-SHA-256${iterations}:{b64(salt)}$"
            f"{b64(hashlib.sha256(ck).digest())}:{b64(sk)}")


class PgConn:
    """One connection; messages are (type byte, body)."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.params = {}
        self.version = None

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            c = self.sock.recv(1 << 20)
            if not c:
                raise EOFError("server closed the connection")
            self.buf += c

    def recv_bytes(self, n):
        self._fill(n)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv(self):
        self._fill(5)
        t = bytes(self.buf[:1])
        n = struct.unpack(">I", self.buf[1:5])[0]
        self._fill(1 + n)
        body = bytes(self.buf[5:1 + n])
        del self.buf[:1 + n]
        return t, body

    def expect(self, type_):
        t, body = self.recv()
        if t == b"E":
            raise ServerError(parse_error(body))
        if t != type_:
            raise ProtocolError(f"expected {type_!r}, got {t!r} {body[:80]!r}")
        return body

    def until_ready(self):
        """Messages up to and including ReadyForQuery."""
        out = []
        while True:
            t, body = self.recv()
            out.append((t, body))
            if t == b"Z":
                return out

    # ---- startup ------------------------------------------------------

    def ssl_request(self):
        self.send(struct.pack(">II", 8, 80877103))
        return self.recv_bytes(1)

    def gss_request(self):
        self.send(struct.pack(">II", 8, 80877104))
        return self.recv_bytes(1)

    def startup(self, user="tarn", password=None, **params):
        self.send(startup_packet(user, **params))
        t, body = self.recv()
        if t == b"E":
            raise ServerError(parse_error(body))
        assert t == b"R", (t, body)
        code = struct.unpack(">I", body[:4])[0]
        if code == 10:
            assert b"SCRAM-SHA-256\0" in body[4:], body
            self._scram(password or "")
        else:
            assert code == 0, code
        msgs = self.until_ready()
        for t, body in msgs:
            if t == b"E":
                raise ServerError(parse_error(body))
            if t == b"S":
                k, v, _ = body.split(b"\0")
                self.params[k.decode()] = v.decode()
        return msgs

    def _scram(self, password):
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n=,r={nonce}"
        first = ("n,," + first_bare).encode()
        self.send(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack(">I", len(first))
                      + first))
        body = self.expect(b"R")
        assert struct.unpack(">I", body[:4])[0] == 11
        server_first = body[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(nonce)
        salt = base64.b64decode(attrs["s"])
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                     int(attrs["i"]))
        ck = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(ck).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth = f"{first_bare},{server_first},{without_proof}".encode()
        sig = hmac.new(stored, auth, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        final = f"{without_proof},p={base64.b64encode(proof).decode()}"
        self.send(msg(b"p", final.encode()))
        body = self.expect(b"R")
        assert struct.unpack(">I", body[:4])[0] == 12
        sk = hmac.new(salted, b"Server Key", "sha256").digest()
        want = base64.b64encode(hmac.new(sk, auth, "sha256").digest())
        assert body[4:] == b"v=" + want, "wrong server signature"
        body = self.expect(b"R")
        assert struct.unpack(">I", body[:4])[0] == 0

    # ---- queries --------------------------------------------------------

    def query(self, text):
        """Simple query: the messages up to ReadyForQuery (or CopyBoth)."""
        self.send(msg(b"Q", text.encode() + b"\0"))
        out = []
        while True:
            t, body = self.recv()
            out.append((t, body))
            if t in (b"Z", b"W"):
                return out

    def pagestream(self, version, tenant, timeline):
        out = self.query(f"pagestream_v{version} {tenant} {timeline}")
        t, body = out[-1]
        if t != b"W":
            errs = [parse_error(b) for t2, b in out if t2 == b"E"]
            raise ServerError(errs[0] if errs else {"M": repr(out)})
        assert body == b"\0\0\0", body
        self.version = version
        return self

    # ---- pagestream -----------------------------------------------------

    def request_bytes(self, tag, reqid=0, lsn=LSN_MAX, nms=0, **f):
        v = self.version
        head = struct.pack(">B", tag)
        if v == 3:
            head += struct.pack(">Q", reqid)
        head += struct.pack(">QQ", lsn, nms)
        if tag in (EXISTS, NBLOCKS, GETPAGE):
            body = struct.pack(">IIIB", *f["rel"])
            if tag == GETPAGE:
                body += struct.pack(">I", f["blk"])
        elif tag == DBSIZE:
            body = struct.pack(">I", f["db"])
        else:
            body = struct.pack(">BI", f["kind"], f["segno"])
        return msg(b"d", head + body)

    def send_request(self, tag, **kw):
        self.send(self.request_bytes(tag, **kw))

    def recv_response(self):
        """(tag, header echo or None, body bytes after header)."""
        t, body = self.recv()
        if t == b"E":
            raise ServerError(parse_error(body))
        if t != b"d":
            raise ProtocolError(f"expected CopyData, got {t!r}")
        tag = body[0]
        if self.version == 3:
            return tag, struct.unpack(">QQQ", body[1:25]), body[25:]
        return tag, None, body[1:]

    def call(self, tag, **kw):
        self.send_request(tag, **kw)
        return self.recv_response()
