#!/usr/bin/python3
"""A small HTTP/1.1 file server for download tests: serves the files of one directory with
byte ranges (RFC 9110 "bytes=START-" and "bytes=START-END"), records every request, and can
be told to misbehave once so a client's pause, resume and failure paths run for real.

Usage: range_http_server.py DIR   (listens on 127.0.0.1, a free port)
Prints "ready port=N" on stdout once listening; exits when its stdin closes (the test that
started it is gone). Control endpoints:
  GET /__requests              JSON list of {"path", "range"} seen so far (control calls excluded)
  GET /__config?stall_after=N  the next file response sends N bytes, then holds the connection
                               open, sending nothing, until the client goes away
  GET /__config?drop_after=N   the next file response sends N bytes, then closes the connection
  GET /__config?ignore_range=1 file responses ignore Range and send the whole file (200)
  GET /__config?reset=1        back to normal
"""
import json
import os
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(sys.argv[1])
LOCK = threading.Lock()
REQUESTS = []
CONFIG = {"stall_after": None, "drop_after": None, "ignore_range": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test reads /__requests instead
        pass

    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__requests":
            with LOCK:
                return self._json(list(REQUESTS))
        if url.path == "/__config":
            q = urllib.parse.parse_qs(url.query)
            with LOCK:
                if "reset" in q:
                    CONFIG.update(stall_after=None, drop_after=None, ignore_range=False)
                for key in ("stall_after", "drop_after"):
                    if key in q:
                        CONFIG[key] = int(q[key][0])
                if "ignore_range" in q:
                    CONFIG["ignore_range"] = q["ignore_range"][0] == "1"
                return self._json(dict(CONFIG))

        rng = self.headers.get("Range")
        with LOCK:
            REQUESTS.append({"path": url.path, "range": rng})
            stall, drop = CONFIG["stall_after"], CONFIG["drop_after"]
            CONFIG["stall_after"] = CONFIG["drop_after"] = None  # once
            ignore_range = CONFIG["ignore_range"]

        name = urllib.parse.unquote(url.path.lstrip("/"))
        path = os.path.abspath(os.path.join(ROOT, name))
        if not path.startswith(ROOT + os.sep) or not os.path.isfile(path):
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        status = 200
        if rng and not ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if not m or int(m.group(1)) >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(m.group(1))
            end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if head:
            return
        limit = length
        if stall is not None:
            limit = min(limit, stall)
        if drop is not None:
            limit = min(limit, drop)
        with open(path, "rb") as f:
            f.seek(start)
            left = limit
            while left > 0:
                chunk = f.read(min(left, 64 * 1024))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        self.wfile.flush()
        if limit == length:
            return
        if stall is not None and (drop is None or stall <= drop):
            # Hold the response open until the client gives up on it (pause or cancel).
            self.close_connection = True
            try:
                self.rfile.peek(1)  # blocks until the client closes its end
            except (OSError, ValueError):
                pass
            return
        # drop_after: close mid-body; the client sees fewer bytes than Content-Length.
        self.close_connection = True
        try:
            self.connection.shutdown(2)
        except OSError:
            pass


def exit_when_stdin_closes():
    # The test holds our stdin open; if it dies, even by a crash, we go with it.
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("ready port=%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
