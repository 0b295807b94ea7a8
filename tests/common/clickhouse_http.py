"""The thinnest HTTP front on chdb's ClickHouse engine, for tests only.

chdb (PyPI) embeds a current ClickHouse engine but exports no server entry point, and Debian 12's
clickhouse-server (18.16) is older than the JSONExtractString the platform's `events` table uses.
This front does what ClickHouse's HTTP interface does with a request and nothing more: the
query is the `query` URL parameter followed by the request body; its output is whatever the
engine writes for the FORMAT the query names (TabSeparated by default); a failure is HTTP 500
with the engine's message. Credentials are checked as ClickHouse takes them (X-ClickHouse-User
and X-ClickHouse-Key, or basic auth) against FRONT_USER and FRONT_PASSWORD. It prints
`listening on PORT` once it serves. Usage: python clickhouse_http.py DATA_DIR
"""

import base64
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

from chdb import session as chs

DB = chs.Session(sys.argv[1])
USER = os.environ.get("FRONT_USER", "default")
PASSWORD = os.environ.get("FRONT_PASSWORD", "")


class Handler(BaseHTTPRequestHandler):
    def credentials(self):
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            return user, password
        return self.headers.get("X-ClickHouse-User", "default"), self.headers.get("X-ClickHouse-Key", "")

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def run(self, body):
        if self.credentials() != (USER, PASSWORD):
            return self.answer(401, b"Code: 516. DB::Exception: default: Authentication failed. (AUTHENTICATION_FAILED)\n")
        query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
        text = "\n".join(part for part in (query, body.decode()) if part)
        try:
            result = DB.query(text, "TabSeparated")
        except Exception as e:  # the engine's own message, as ClickHouse's HTTP 500 carries it
            return self.answer(500, str(e).encode())
        self.answer(200, result.bytes())

    def do_GET(self):
        self.run(b"")

    def do_POST(self):
        self.run(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on {server.server_address[1]}", flush=True)
server.serve_forever()
