"""A local HTTPS "API" that records everything it is sent, standing in for provider hosts.

One server answers for every name in its certificate (api.twitter.com, the
lookalikes, ...); `authsome run --resolve NAME:443:127.0.0.1:PORT` points a
name at it. A plain-HTTP twin records what arrives without TLS.

Routes:
  /echo, anything else   200, JSON of method/path/headers/body length
  /status/NNN            that status (401 carries WWW-Authenticate)
  /sse?n=N               server-sent events; after the first one it waits for /release
  /big?mb=N              N MiB; after the first MiB it waits for /release
  /hold                  answers only after /release (a request kept in flight)
  /release               lets a waiting /sse, /big or /hold continue
  /redirect?to=URL       302 to URL
  /reflect               what a careless API does: every request header back as an X-Echo-* response
                         header and in the JSON body; ?status=NNN, ?encoding=gzip, ?chunk=N (a chunked
                         body flushed every N bytes)
  /ws                    a WebSocket that echoes the subprotocol it was offered and sends the request's
                         Authorization header back as its one message, a ping payload and the close reason
  /upload                reads a (chunked) request body, counting what has arrived in /progress
  /progress              the bytes /upload has received so far
  /oauth-echo            a token endpoint whose error quotes the refresh token and Authorization it got
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .tls import CA, make_leaf

NAMES = [
    "api.twitter.com", "api.x.com", "api.acme.test", "other.test",
    "api.twitter.com.evil.test", "evilapi.twitter.com", "api.x.com.attacker.test",
    "gitlab.com", "gitlab.corp.test",
]
RELEASE_TIMEOUT = 30.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def _record(self, body: bytes) -> dict:
        entry = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host"),
            "sni": getattr(self.connection, "sni", None),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_len": len(body),
            "tls": self.server.tls,
        }
        with self.server.lock:
            self.server.seen.append(entry)
        return entry

    def _send(self, status: int, payload: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if url.path == "/upload":
            self._upload()
            return
        if url.path == "/progress":
            self._send(200, json.dumps({"received": self.server.progress}).encode())
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path in ("/hold", "/hold-drop"):
            self.server.release.clear()  # before the request shows in `seen`, so a release that follows counts
        entry = self._record(body)
        if url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            extra = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if code == 401 else None
            self._send(code, json.dumps({"status": code}).encode(), extra=extra)
        elif url.path == "/hold":
            # No answer at all until /release: the request stays in flight.
            self.server.release.wait(RELEASE_TIMEOUT)
            self._send(200, json.dumps(entry).encode())
        elif url.path == "/hold-drop":
            # Held like /hold, then the connection closes with no answer: the flow ends in an error.
            self.server.release.wait(RELEASE_TIMEOUT)
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
        elif url.path == "/release":
            self.server.release.set()
            self._send(200, b'{"released": true}')
        elif url.path == "/sse":
            self._sse(int(q.get("n", ["3"])[0]))
        elif url.path == "/big":
            self._big(int(q.get("mb", ["50"])[0]))
        elif url.path == "/redirect":
            self._send(302, b"", extra={"Location": q["to"][0]})
        elif url.path == "/reflect":
            self._reflect(entry, int(q.get("status", ["200"])[0]), q.get("encoding", [None])[0], int(q.get("chunk", ["0"])[0]))
        elif url.path == "/ws":
            self._websocket()
        elif url.path == "/oauth-echo":
            # A token endpoint that quotes what it got in its error (as careless ones do).
            form = parse_qs(body.decode(errors="replace"))
            described = f"could not refresh {form.get('refresh_token')} for {self.headers.get('Authorization')}"
            self._send(400, json.dumps({"error": "invalid_request", "error_description": described}).encode())
        else:
            self._send(200, json.dumps(entry).encode())

    def _reflect(self, entry: dict, status: int, encoding: str | None, chunk: int) -> None:
        payload = json.dumps(entry).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in self.headers.items():
            self.send_header(f"X-Echo-{name}", value)
        if self.headers.get("Origin"):
            self.send_header("Access-Control-Allow-Origin", self.headers["Origin"])
        if encoding == "gzip":
            payload = gzip.compress(payload)
            self.send_header("Content-Encoding", "gzip")
        if chunk:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(payload), chunk):
                piece = payload[i:i + chunk]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def _websocket(self) -> None:
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                               .encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        if self.headers.get("Sec-WebSocket-Protocol"):
            self.send_header("Sec-WebSocket-Protocol", self.headers["Sec-WebSocket-Protocol"].split(",")[0].strip())
        self.end_headers()
        message = f"you sent Authorization: {self.headers.get('Authorization')}".encode()
        self.wfile.write(bytes([0x81, len(message)]) + message if len(message) < 126
                         else bytes([0x81, 126]) + len(message).to_bytes(2, "big") + message)
        control = (self.headers.get("Authorization") or "")[:110].encode()
        self.wfile.write(bytes([0x89, len(control)]) + control)  # a ping quoting it
        self.wfile.write(bytes([0x88, 2 + len(control), 0x03, 0xE8]) + control)  # close, 1000, and it as the reason
        self.wfile.flush()
        self.close_connection = True

    def _upload(self) -> None:
        self.server.progress = 0
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                remaining = size
                while remaining:
                    got = len(self.rfile.read(min(remaining, 65536)))
                    remaining -= got
                    self.server.progress += got
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                got = len(self.rfile.read(min(remaining, 65536)))
                remaining -= got
                self.server.progress += got
        entry = self._record(b"")
        entry["body_len"] = self.server.progress
        self._send(200, json.dumps({"received": self.server.progress}).encode())

    def _sse(self, n: int) -> None:
        self.server.release.clear()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(n):
            event = f"data: {json.dumps({'i': i})}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            if i == 0 and not self.server.release.wait(RELEASE_TIMEOUT):
                break  # nobody saw the first event in time: it was not streamed
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _big(self, mb: int) -> None:
        self.server.release.clear()
        chunk = b"x" * (1 << 20)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(mb << 20))
        self.end_headers()
        for i in range(mb):
            self.wfile.write(chunk)
            self.wfile.flush()
            if i == 0 and not self.server.release.wait(RELEASE_TIMEOUT):
                return  # close early: the client never got the first MiB while we waited

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: bool):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.progress = 0  # bytes /upload has read so far


class ApiServer:
    """HTTPS on `port` (certificate for NAMES, signed by the test CA), plain HTTP on `plain_port`."""

    def __init__(self, ca: CA, workdir: Path):
        leaf = make_leaf(ca, workdir, NAMES, stem="api-server")
        self.https = _Server(tls=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(leaf.cert, leaf.key)

        def remember_sni(sslobj, name, _ctx):
            sslobj.sni = name  # read back in the handler via the connection

        ctx.sni_callback = remember_sni
        self.https.socket = ctx.wrap_socket(self.https.socket, server_side=True)
        self.plain = _Server(tls=False)
        self.port = self.https.server_address[1]
        self.plain_port = self.plain.server_address[1]
        for srv in (self.https, self.plain):
            threading.Thread(target=srv.serve_forever, daemon=True).start()

    def resolve(self, *names: str, port: int = 443) -> list[str]:
        """`--resolve` arguments sending NAME:port to this server."""
        target = self.plain_port if port == 80 else self.port
        out = []
        for name in names:
            out += ["--resolve", f"{name}:{port}:127.0.0.1:{target}"]
        return out

    @property
    def seen(self) -> list[dict]:
        with self.https.lock, self.plain.lock:
            return list(self.https.seen) + list(self.plain.seen)

    def release(self) -> None:
        """Let held requests (/hold, /hold-drop) answer."""
        for srv in (self.https, self.plain):
            srv.release.set()

    def clear(self) -> None:
        for srv in (self.https, self.plain):
            with srv.lock:
                srv.seen.clear()
            srv.release.clear()

    def everything_seen(self) -> str:
        """All recorded requests as one string, for searching for a secret."""
        return json.dumps(self.seen)

    def close(self) -> None:
        for srv in (self.https, self.plain):
            srv.shutdown()
            srv.server_close()
