#!/usr/bin/python3
"""The router's OpenAI-compatible HTTP API against clients that are not ours: Python's own
http.client (no Tidelane code) and curl, with a real tidelane-router and tidelane-worker as
child processes on free loopback ports.

Usage: openai_http_test.py BIN_DIR
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import start_router_and_worker  # noqa: E402

BIN_DIR = sys.argv[1]
del sys.argv[1:2]
WORK = tempfile.mkdtemp(prefix="tidelane-http-")




class OpenAiHttpApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token, cls.router, cls.worker, fields = start_router_and_worker(
            BIN_DIR, WORK, "high", "http-worker")
        cls.host, cls.port = fields["http"].rsplit(":", 1)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.worker, cls.router):
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(WORK, ignore_errors=True)

    def call(self, method, path, body=None, token=None, raw=None):
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        headers = {"Content-Type": "application/json"}
        if token is not False:
            headers["Authorization"] = "Bearer " + (token or self.token)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        payload = res.read().decode()
        conn.close()
        return res.status, payload

    def chat(self, text, **extra):
        return {"model": "tidelane-synthetic", "messages": [{"role": "user", "content": text}], **extra}

    def stream_events(self, body):
        """Posts a streaming request and returns (data payloads, comment lines)."""
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                     headers={"Authorization": "Bearer " + self.token, "Content-Type": "application/json"})
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        self.assertTrue(res.getheader("Content-Type").startswith("text/event-stream"))
        data, comments = [], []
        for raw in res.read().decode().split("\n"):
            if raw.startswith("data: "):
                data.append(raw[6:])
            elif raw.startswith(":"):
                comments.append(raw)
        conn.close()
        return data, comments

    def test_models_lists_what_workers_serve(self):
        status, body = self.call("GET", "/v1/models")
        self.assertEqual(status, 200)
        reply = json.loads(body)
        self.assertEqual(reply["object"], "list")
        self.assertEqual([m["id"] for m in reply["data"]], ["tidelane-synthetic"])

    def test_streamed_answer_equals_the_whole_answer(self):
        status, body = self.call("POST", "/v1/chat/completions", self.chat("tell me of tides"))
        self.assertEqual(status, 200)
        whole = json.loads(body)
        self.assertEqual(whole["object"], "chat.completion")
        self.assertEqual(whole["choices"][0]["message"]["role"], "assistant")
        content = whole["choices"][0]["message"]["content"]
        self.assertGreater(len(content), 0)
        self.assertEqual(whole["usage"]["total_tokens"],
                         whole["usage"]["prompt_tokens"] + whole["usage"]["completion_tokens"])

        data, comments = self.stream_events(
            self.chat("tell me of tides", stream=True, stream_options={"include_usage": True}))
        self.assertEqual(data[-1], "[DONE]")
        chunks = [json.loads(d) for d in data[:-1]]
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        self.assertEqual(len({c["id"] for c in chunks}), 1)
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        self.assertEqual(text, content)
        finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        self.assertEqual(len(finals), 1)
        self.assertEqual(chunks[-1]["usage"]["completion_tokens"], whole["usage"]["completion_tokens"])
        # Tidelane's own events ride along as SSE comments, which OpenAI clients skip.
        self.assertTrue(any(c.startswith(": accepted queue_position=") for c in comments))
        self.assertTrue(any(c.startswith(": routed node=http-worker") for c in comments))

    def test_max_tokens_caps_the_answer(self):
        status, body = self.call("POST", "/v1/chat/completions", self.chat("count", max_tokens=3))
        self.assertEqual(status, 200)
        reply = json.loads(body)
        self.assertEqual(reply["usage"]["completion_tokens"], 3)
        self.assertEqual(reply["choices"][0]["finish_reason"], "length")

    def test_bad_requests_get_openai_error_objects(self):
        cases = [
            (401, dict(body=self.chat("hi"), token="wrong")),
            (401, dict(body=self.chat("hi"), token=False)),
            (400, dict(raw="{\"model\":")),
            (400, dict(body={"model": "tidelane-synthetic"})),
            (400, dict(body={"model": "tidelane-synthetic", "messages": [{"role": "wizard", "content": "x"}]})),
            (400, dict(body=self.chat("hi", temperature="hot"))),
            (400, dict(body=self.chat("hi", max_tokens=10 ** 9))),
            (404, dict(body={**self.chat("hi"), "model": "gpt-9"})),
            (413, dict(body=self.chat("x" * (5 << 20)))),
        ]
        for expected, kwargs in cases:
            status, body = self.call("POST", "/v1/chat/completions", **kwargs)
            self.assertEqual(status, expected, f"{kwargs!r:.120} -> {body}")
            if expected != 413:
                error = json.loads(body)["error"]
                self.assertTrue(error["message"])
                self.assertIn("type", error)
        self.assertEqual(self.call("GET", "/v1/nothing")[0], 404)
        self.assertEqual(self.call("GET", "/healthz", token=False), (200, "ok\n"))
        # The server is still up and answering after all of that.
        self.assertEqual(self.call("POST", "/v1/chat/completions", self.chat("still there?"))[0], 200)

    def test_client_leaving_mid_stream_disturbs_nobody(self):
        sock = socket.create_connection((self.host, int(self.port)))
        body = json.dumps(self.chat("a long answer please", stream=True))
        sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
        self.assertIn(b"200 OK", sock.recv(4096))
        sock.close()
        status, body = self.call("POST", "/v1/chat/completions", self.chat("next one"))
        self.assertEqual(status, 200)

    def test_metrics_in_prometheus_text_format(self):
        self.assertEqual(self.call("POST", "/v1/chat/completions", self.chat("for the histograms"))[0], 200)
        self.assertEqual(self.call("GET", "/metrics", token=False)[0], 401)
        status, body = self.call("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn('# TYPE tidelane_requests_total counter', body)
        self.assertIn('tidelane_node_active_requests{node="http-worker"}', body)
        self.assertIn('tidelane_ttft_seconds_bucket{le="+Inf"}', body)
        # Prometheus's own linter accepts the exposition (Debian package prometheus).
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: scripts/bootstrap installs prometheus")
        check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_curl_streams_to_done(self):
        out = subprocess.run(
            ["curl", "-sS", "-N", f"http://{self.host}:{self.port}/v1/chat/completions",
             "-H", "Authorization: Bearer " + self.token, "-H", "Content-Type: application/json",
             "-d", json.dumps(self.chat("hello curl", stream=True))],
            capture_output=True, text=True, timeout=60, check=True).stdout
        self.assertTrue(out.rstrip().endswith("data: [DONE]"), out[-200:])


class ManyWaitingClients(unittest.TestCase):
    """The HTTP front door is asynchronous: a client waiting in line costs the router a socket,
    not a thread, and one that hangs up is taken out of the line."""

    CLIENTS = 1500

    def test_clients_waiting_in_line_hold_sockets_not_threads(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = self.CLIENTS + 512
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want), hard))
        work = tempfile.mkdtemp(prefix="tidelane-http-many-")
        token, router, worker, fields = start_router_and_worker(BIN_DIR, work, "low", "slow-worker")
        host, port = fields["http"].rsplit(":", 1)
        socks = []
        try:
            body = json.dumps({"model": "tidelane-synthetic", "stream": True, "max_tokens": 400,
                               "messages": [{"role": "user", "content": "wait your turn"}]})
            request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
            for _ in range(self.CLIENTS):
                s = socket.create_connection((host, int(port)))
                s.sendall(request)
                socks.append(s)
            # Each client hears at once that it was accepted, with its place in line.
            accepted = 0
            for s in socks:
                s.settimeout(60)
                buf = b""
                while b"accepted queue_position=" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                accepted += b"accepted queue_position=" in buf
            self.assertEqual(accepted, self.CLIENTS)
            with open(f"/proc/{router.pid}/status") as f:
                threads = int(next(l for l in f if l.startswith("Threads:")).split()[1])
            # One thread per connection would be over 1,500; admitted requests and the fixed
            # pools (gRPC, HTTP I/O, housekeeping) stay far below that.
            self.assertLess(threads, self.CLIENTS // 5, f"{threads} threads for {self.CLIENTS} clients")
            for s in socks:
                s.close()
            socks = []
            # Clients that hung up leave the line (the router notices within its housekeeping
            # period), and the router serves the next client normally.
            conn = None
            queued = None
            for _ in range(600):
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
                metrics = conn.getresponse().read().decode()
                conn.close()
                queued = next(float(l.split()[1]) for l in metrics.splitlines()
                              if l.startswith("tidelane_queue_length "))
                if queued == 0:
                    break
                subprocess.run(["sleep", "0.1"])
            self.assertEqual(queued, 0)
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            conn.request("POST", "/v1/chat/completions", body=json.dumps(
                {"model": "tidelane-synthetic", "max_tokens": 8,
                 "messages": [{"role": "user", "content": "my turn"}]}),
                headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            res = conn.getresponse()
            self.assertEqual(res.status, 200, res.read())
        finally:
            for s in socks:
                s.close()
            for p in (worker, router):
                p.terminate()
                p.wait(timeout=30)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
