#!/usr/bin/env python
"""A push service on loopback for the benches: it decrypts each Web Push as the device
would (RFC 8291, aes128gcm, with the real library) and timestamps its arrival.

    python bench/push_endpoint.py PORT KEYS_FILE

KEYS_FILE: a JSON object of the devices, ``{"<n>": {"private": <int>, "auth": "<b64url>"}}``
(what ``new_devices`` writes); a push for device n is POSTed to ``/push/<n>``.
``GET /results`` answers the pushes received so far: ``[[n, monotonic time, ok], …]``,
with ``time.monotonic()`` (one clock for every process of the machine).
"""

import base64
import http.server
import json
import sys
import threading
import time
from pathlib import Path

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_devices(count: int, base_url: str) -> tuple[dict, list[dict]]:
    """``count`` devices: (their keys for the endpoint, their subscriptions as the Push API
    gives them, endpoint ``base_url/push/<n>``)."""
    keys, subscriptions = {}, []
    for n in range(count):
        private = ec.generate_private_key(ec.SECP256R1())
        auth = b64url(bytes(range(n % 200, n % 200 + 16)))
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        keys[str(n)] = {"private": private.private_numbers().private_value, "auth": auth}
        subscriptions.append(
            {"endpoint": f"{base_url}/push/{n}", "keys": {"p256dh": b64url(public), "auth": auth}}
        )
    return keys, subscriptions


def serve(port: int, keys_file: str) -> None:
    devices = {
        n: (
            ec.derive_private_key(key["private"], ec.SECP256R1()),
            base64.urlsafe_b64decode(key["auth"] + "=="),
        )
        for n, key in json.loads(Path(keys_file).read_text()).items()
    }
    received: list[list] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            n = self.path.rsplit("/", 1)[-1]
            ok = False
            if n in devices:
                private_key, auth = devices[n]
                try:
                    json.loads(
                        http_ece.decrypt(
                            body, private_key=private_key, auth_secret=auth, version="aes128gcm"
                        )
                    )
                    ok = True
                except (ValueError, KeyError, http_ece.ECEException):
                    ok = False  # counted: a push that does not decrypt
            with lock:
                received.append([n, time.monotonic(), ok])
            self.send_response(201 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            with lock:
                data = json.dumps(received).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # every push of an activation may come at once

    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
