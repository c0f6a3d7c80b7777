"""A minimal corporate HTTP proxy: CONNECT tunnels only, optional Basic auth, its own name table.

Stands in for the proxy a company puts in front of the internet, to prove that
`authsome run` chains to the parent's HTTPS_PROXY instead of dropping it.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import threading


class CorpProxy:
    def __init__(self, names: dict[str, tuple[str, int]], credentials: tuple[str, str] | None = None):
        self.names = names  # host -> (address, port) the proxy connects to
        self.expected = "Basic " + base64.b64encode(":".join(credentials).encode()).decode() if credentials else None
        self.connects: list[tuple[str, bool]] = []  # (CONNECT target, authenticated)
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = self.rfile.readline().decode("latin-1").split()
                headers = {}
                while True:
                    line = self.rfile.readline().decode("latin-1").strip()
                    if not line:
                        break
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                if len(request) < 2 or request[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                authed = outer.expected is None or headers.get("proxy-authorization") == outer.expected
                outer.connects.append((request[1], authed))
                if not authed:
                    self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                     b"Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n")
                    return
                host, _, port = request[1].rpartition(":")
                target = outer.names.get(host)
                if target is None:
                    self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                upstream = socket.create_connection(target)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                pump = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
                pump.start()
                _pipe(self.connection, upstream, first=self.rfile)
                pump.join(5)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(src: socket.socket, dst: socket.socket, first=None) -> None:
    try:
        if first is not None:
            buffered = first.peek() if hasattr(first, "peek") else b""
            if buffered:
                dst.sendall(first.read(len(buffered)))
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
