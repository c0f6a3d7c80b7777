"""An HTTP/2 HTTPS API (hypercorn, ASGI) for tests: records each request, refuses one token.

    python tests/servers/h2api.py CERT KEY RECORD_FILE REFUSED_TOKEN

Prints "READY <port>" once listening. Answers 401 to `Authorization: Bearer REFUSED_TOKEN`,
200 with what it saw otherwise. Every request is appended to RECORD_FILE as a JSON line.
"""

import asyncio
import json
import socket
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

cert, key, record_file, refused = sys.argv[1:5]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    seen = {"method": scope["method"], "path": scope["path"], "http_version": scope["http_version"],
            "authorization": headers.get("authorization"), "body_len": len(body)}
    with open(record_file, "a") as fh:
        fh.write(json.dumps(seen) + "\n")
    status = 401 if headers.get("authorization") == f"Bearer {refused}" else 200
    payload = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def main():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = cert, key
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    print(f"READY {port}", flush=True)
    await serve(app, config)


asyncio.run(main())
