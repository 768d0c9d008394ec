"""A tile server for the map's tests: a PNG for any /<z>/<x>/<y>.png, on loopback.

with tile_server() as server:        server.url: "http://127.0.0.1:<port>/{z}/{x}/{y}.png"
    ...                              server.requests: the paths asked for
tile_server(answer=lambda n: ...)    answer(n) -> whether the n-th request (from 0) gets
                                     the tile; the others a 404
"""

import contextlib
import re
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TILE = re.compile(r"\A/\d+/\d+/\d+\.png\Z")


def png(width=256, height=256, rgb=(0xD8, 0xE6, 0xD0)) -> bytes:
    """A plain PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@contextlib.contextmanager
def tile_server(answer=lambda n: True):
    body = png()
    requests: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with lock:
                n = len(requests)
                requests.append(self.path)
            if TILE.match(self.path) and answer(n):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
    server.requests = requests
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
