#!/usr/bin/python3
# Slow, counting origin for the request-coalescing load: GET /slow/<anything> answers
# after a fixed delay with a cacheable body and counts how many requests reached it;
# GET /count?path=/slow/<x> tells that count and when the first answer for it was sent.
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
counts = {}      # path -> requests received
finished = {}    # path -> wall-clock time the first answer was written
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body, ctype, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        u = urlsplit(self.path)
        if u.path == "/count":
            p = parse_qs(u.query).get("path", [""])[0]
            with lock:
                out = {"count": counts.get(p, 0), "finished": finished.get(p)}
            self.send(200, json.dumps(out).encode(), "application/json")
            return
        if u.path.startswith("/slow/"):
            with lock:
                counts[self.path] = counts.get(self.path, 0) + 1
            time.sleep(DELAY)
            body = (self.path + "\n").encode() * 16
            self.send(200, body, "text/plain",
                      [("Cache-Control", "public, max-age=3600")])
            now = time.time()
            with lock:
                finished.setdefault(self.path, now)
            return
        self.send(404, b"not found\n", "text/plain")


def main():
    port = int(sys.argv[1])
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 256
    srv.serve_forever()


if __name__ == "__main__":
    main()
