"""A fast reader of tarnd's pages for the tests: one kept-alive HTTP
connection to the admin API's getpage, rel_size and db_size routes.

Bulk comparisons read tens of thousands of pages; a connection per request
would make them needlessly slow.
"""
import http.client
import json

from pg import lsn_str


class PageReader:
    def __init__(self, tarnd, tenant, timeline):
        self.t = tarnd
        self.base = f"/v1/tenant/{tenant}/timeline/{timeline}"
        self.conn = None
        self.requests = 0

    def _get(self, path):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.t.port, timeout=60)
            try:
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                self.requests += 1
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, body
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    @staticmethod
    def _lsn(at):
        return "" if at is None else "&lsn=" + (
            at if isinstance(at, str) else lsn_str(at))

    def page(self, spc, db, rel, fork, blk, at=None):
        """(status, bytes): the page, or the error body."""
        return self._get(f"{self.base}/getpage?spc={spc}&db={db}&rel={rel}"
                         f"&fork={fork}&blk={blk}{self._lsn(at)}")

    def rel_size(self, spc, db, rel, fork, at=None):
        """{"exists", "nblocks", "lsn"} or raises with the error."""
        status, body = self._get(f"{self.base}/rel_size?spc={spc}&db={db}"
                                 f"&rel={rel}&fork={fork}{self._lsn(at)}")
        assert status == 200, (status, body)
        return json.loads(body)

    def db_size(self, spc, db, at=None):
        status, body = self._get(f"{self.base}/db_size?spc={spc}&db={db}"
                                 f"{self._lsn(at)}")
        assert status == 200, (status, body)
        return json.loads(body)
