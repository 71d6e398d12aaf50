#!/usr/bin/python3
"""The router's security controls, seen from clients that are not ours (python3-grpcio, curl,
Python's http.client) against a real tidelane-router and tidelane-worker as child processes:

- TLS on gRPC and HTTP with certificates made here by the openssl command line; a plaintext
  client is refused; workers must present a client certificate signed by the router's CA
  (mutual TLS) before they are given work;
- per-token rate limits: each client token has its own bucket, the refusal is HTTP 429 with
  Retry-After (gRPC: RESOURCE_EXHAUSTED), and another token is not affected;
- request-size limits on both APIs;
- request ownership: a request belongs to the client token that made it; another client's
  Resume and GET /v1/receipts/{id} get exactly the answer an unknown id gets, live or
  finished; the router's own token reads everything, including rows of a ledger written
  before owners were recorded (schema 2), which no client token may read;
- no secret (bearer tokens, private keys) in logs, crash output or the data directory.

Usage: security_test.py BIN_DIR PROTO_DIR
"""
import http.client
import json
import os
import secrets
import shutil
import signal
import sqlite3
import ssl
import threading
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import generate_stubs  # noqa: E402

BIN_DIR, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

WORK = tempfile.mkdtemp(prefix="tidelane-security-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2  # noqa: E402

MODEL = "tidelane-synthetic"


def write_secret(path, text):
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(text)
    return path


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki(directory):
    """A CA, and two leaf certificates for 127.0.0.1 usable as server and client: one for the
    router, one for the worker. Keys are 0600. Returns a dict of paths."""
    os.makedirs(directory, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Tidelane test CA",
            cwd=directory)
    ext = os.path.join(directory, "leaf.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "basicConstraints=CA:FALSE\n")
    paths = {"ca": os.path.join(directory, "ca.pem")}
    for name in ("router", "worker"):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext,
                cwd=directory)
        os.chmod(os.path.join(directory, f"{name}.key"), 0o600)
        paths[name + "_cert"] = os.path.join(directory, f"{name}.pem")
        paths[name + "_key"] = os.path.join(directory, f"{name}.key")
    return paths


class Daemon:
    """A child process whose stdout ready line is read and whose stderr goes to a file."""

    def __init__(self, args, ready_prefix, log_path):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith(ready_prefix):
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            raise RuntimeError(f"{args[0]} did not become ready: {line!r}; stderr: "
                               + open(log_path).read()[-2000:])
        self.fields = dict(kv.split("=", 1) for kv in line.split()[2:])

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


def start_router(work, token_file, *extra):
    return Daemon([os.path.join(BIN_DIR, "tidelane-router"), "--grpc-listen", "127.0.0.1:0",
                   "--http-listen", "127.0.0.1:0", "--auth-token-file", token_file,
                   "--data-dir", os.path.join(work, "data"), *extra],
                  "tidelane-router ready", os.path.join(work, "router.log"))


def start_worker(work, router, token_file, name, *extra):
    return Daemon([os.path.join(BIN_DIR, "tidelane-worker"), "--router", router.fields["grpc"],
                   "--auth-token-file", token_file, "--profile", "high", "--name", name, *extra],
                  "tidelane-worker ready", os.path.join(work, name + ".log"))


def chat_request(text, max_tokens=4):
    return chat_pb2.ChatRequest(
        request_id="sec-" + secrets.token_hex(4), user="security",
        messages=[common_pb2.ChatMessage(role="user", content=text)],
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens))


def http_call(host, port, token, body, context=None, timeout=30):
    conn = (http.client.HTTPSConnection(host, port, context=context, timeout=timeout) if context
            else http.client.HTTPConnection(host, port, timeout=timeout))
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    res = conn.getresponse()
    payload = res.read().decode()
    headers = dict(res.getheaders())
    conn.close()
    return res.status, headers, payload


class TlsEverywhere(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = os.path.join(WORK, "tls")
        os.makedirs(cls.work)
        cls.pki = make_pki(os.path.join(cls.work, "pki"))
        cls.token = secrets.token_hex(24)
        cls.token_file = write_secret(os.path.join(cls.work, "token"), cls.token + "\n")
        p = cls.pki
        cls.router = start_router(cls.work, cls.token_file, "--tls-cert", p["router_cert"],
                                  "--tls-key", p["router_key"], "--tls-ca", p["ca"])
        cls.worker = start_worker(cls.work, cls.router, cls.token_file, "tls-worker",
                                  "--tls-cert", p["worker_cert"], "--tls-key", p["worker_key"],
                                  "--tls-ca", p["ca"])

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()
        cls.router.stop()

    def secure_stub(self):
        with open(self.pki["ca"], "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(self.router.fields["grpc"], creds)
        self.addCleanup(channel.close)
        return chat_pb2_grpc.ChatServiceStub(channel)

    def test_grpc_chat_over_tls_reaches_a_mutually_authenticated_worker(self):
        events = list(self.secure_stub().Chat(
            chat_request("hello over TLS"), metadata=[("authorization", "Bearer " + self.token)]))
        kinds = [e.WhichOneof("event") for e in events]
        self.assertEqual(kinds[-1], "done", kinds)
        self.assertIn("routed", kinds)
        self.assertEqual(next(e for e in events if e.HasField("routed")).routed.node, "tls-worker")

    def test_plaintext_grpc_client_is_refused(self):
        channel = grpc.insecure_channel(self.router.fields["grpc"])
        self.addCleanup(channel.close)
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        with self.assertRaises(grpc.RpcError) as caught:
            stub.ListModels(chat_pb2.ListModelsRequest(),
                            metadata=[("authorization", "Bearer " + self.token)], timeout=5)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_https_api_with_curl_and_python(self):
        host, port = self.router.fields["http"].rsplit(":", 1)
        out = subprocess.run(
            ["curl", "-sS", "--fail", "--cacert", self.pki["ca"],
             f"https://{host}:{port}/v1/models", "-H", "Authorization: Bearer " + self.token],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(MODEL, [m["id"] for m in json.loads(out.stdout)["data"]])
        context = ssl.create_default_context(cafile=self.pki["ca"])
        status, _, payload = http_call(host, int(port), self.token,
                                       {"model": MODEL, "max_tokens": 4,
                                        "messages": [{"role": "user", "content": "hi"}]},
                                       context=context)
        self.assertEqual(status, 200, payload)
        self.assertTrue(json.loads(payload)["choices"][0]["message"]["content"])
        # A client that does not trust the CA stops at the handshake.
        out = subprocess.run(["curl", "-sS", f"https://{host}:{port}/healthz"],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("certificate", out.stderr.lower())
        # Plain HTTP on the TLS port gets no answer.
        out = subprocess.run(["curl", "-sS", f"http://{host}:{port}/healthz"],
                             capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.stdout.strip(), "ok")

    def test_worker_without_client_certificate_is_not_admitted(self):
        log = os.path.join(self.work, "certless.log")
        log_file = open(log, "w")
        self.addCleanup(log_file.close)
        proc = subprocess.Popen(
            [os.path.join(BIN_DIR, "tidelane-worker"), "--router", self.router.fields["grpc"],
             "--auth-token-file", self.token_file, "--profile", "high", "--name", "certless",
             "--tls-ca", self.pki["ca"]],
            stdout=subprocess.DEVNULL, stderr=log_file, text=True)
        try:
            # It reaches the router (the CA verifies the router) but is turned away: poll its
            # log for the refusal, with a deadline.
            deadline = time.monotonic() + 30
            refused = ""
            while time.monotonic() < deadline and "client certificate" not in refused:
                time.sleep(0.1)
                with open(log) as f:
                    refused = f.read()
            self.assertIn("client certificate", refused)
            reply = self.secure_stub().ListModels(
                chat_pb2.ListModelsRequest(), metadata=[("authorization", "Bearer " + self.token)])
            self.assertEqual([m.nodes for m in reply.models], [1], "only the worker with a cert")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class RateAndSizeLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = os.path.join(WORK, "limits")
        os.makedirs(cls.work)
        cls.token = secrets.token_hex(24)
        cls.token_file = write_secret(os.path.join(cls.work, "token"), cls.token + "\n")
        cls.alice = secrets.token_hex(24)
        cls.bob = secrets.token_hex(24)
        clients = write_secret(os.path.join(cls.work, "clients"),
                               f"# one token per client\n{cls.alice}\n\n{cls.bob}\n")
        # 2 requests at once, then one every 50 s: a third quick request is over the limit.
        cls.router = start_router(cls.work, cls.token_file, "--client-tokens-file", clients,
                                  "--rate-limit", "0.02", "--rate-burst", "2")
        cls.worker = start_worker(cls.work, cls.router, cls.token_file, "limits-worker")
        cls.host, port = cls.router.fields["http"].rsplit(":", 1)
        cls.port = int(port)

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()
        cls.router.stop()

    def body(self, text="hi"):
        return {"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": text}]}

    def test_each_client_token_has_its_own_bucket_over_http_and_grpc(self):
        for _ in range(2):
            status, _, payload = http_call(self.host, self.port, self.alice, self.body())
            self.assertEqual(status, 200, payload)
        status, headers, payload = http_call(self.host, self.port, self.alice, self.body())
        self.assertEqual(status, 429, payload)
        self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        self.assertEqual(json.loads(payload)["error"]["code"], "rate_limit_exceeded")
        # The same bucket is charged over gRPC.
        channel = grpc.insecure_channel(self.router.fields["grpc"])
        self.addCleanup(channel.close)
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        with self.assertRaises(grpc.RpcError) as caught:
            list(stub.Chat(chat_request("hi"), metadata=[("authorization", "Bearer " + self.alice)]))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("retry after", caught.exception.details())
        # Bob is untouched by Alice's flood.
        events = list(stub.Chat(chat_request("hi"), metadata=[("authorization", "Bearer " + self.bob)]))
        self.assertEqual(events[-1].WhichOneof("event"), "done")
        # An unknown token is still unauthenticated, not rate limited.
        status, _, _ = http_call(self.host, self.port, "not-a-client", self.body())
        self.assertEqual(status, 401)

    def test_oversized_requests_are_refused_on_both_apis(self):
        huge = "x" * (3 << 20)
        status, _, payload = http_call(self.host, self.port, self.bob, self.body(huge))
        self.assertEqual(status, 413, payload)
        channel = grpc.insecure_channel(self.router.fields["grpc"])
        self.addCleanup(channel.close)
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        with self.assertRaises(grpc.RpcError) as caught:
            list(stub.Chat(chat_request(huge), metadata=[("authorization", "Bearer " + self.bob)]))
        self.assertIn(caught.exception.code(),
                      (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT))


def write_schema2_ledger(data_dir, request_id, tokens):
    """A ledger as the router wrote it before owners were kept (schema 2), holding one
    finished request."""
    os.makedirs(data_dir, exist_ok=True)
    db = sqlite3.connect(os.path.join(data_dir, "ledger.sqlite3"))
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "router",
                           "fixtures", "ledger-schema2.sql"), encoding="utf-8") as schema:
        db.executescript(schema.read())
    request = chat_request("from the old router")
    request.request_id = request_id
    # State 2 is Ledger::State::kDone.
    db.execute("INSERT INTO requests(id, conversation, request, state, finish_reason, "
               "created_ms, updated_ms) VALUES(?, '', ?, 2, 'stop', 1, 1)",
               (request_id, request.SerializeToString()))
    db.executemany("INSERT INTO tokens VALUES(?, ?, ?)",
                   [(request_id, i, t) for i, t in enumerate(tokens)])
    db.commit()
    db.close()


class RequestOwnership(unittest.TestCase):
    """Issue 9: Resume and receipts are for the client that made the request (and the router's
    token), and say nothing to anyone else."""

    LEGACY_ID = "legacy-" + secrets.token_hex(4)
    LEGACY_TOKENS = ["Hel", "lo", " old"]

    @classmethod
    def setUpClass(cls):
        cls.work = os.path.join(WORK, "ownership")
        os.makedirs(cls.work)
        write_schema2_ledger(os.path.join(cls.work, "data"), cls.LEGACY_ID, cls.LEGACY_TOKENS)
        cls.token = secrets.token_hex(24)
        cls.token_file = write_secret(os.path.join(cls.work, "token"), cls.token + "\n")
        cls.alice = secrets.token_hex(24)
        cls.bob = secrets.token_hex(24)
        clients = write_secret(os.path.join(cls.work, "clients"), f"{cls.alice}\n{cls.bob}\n")
        # The legacy row ended long ago (the fixture's timestamps): past the default retention,
        # so this router keeps finished requests for ever.
        cls.router = start_router(cls.work, cls.token_file, "--client-tokens-file", clients,
                                  "--ledger-retention-hours", "0")
        cls.worker = start_worker(cls.work, cls.router, cls.token_file, "own-worker",
                                  "--identity-file", os.path.join(cls.work, "worker.key"))
        cls.channel = grpc.insecure_channel(cls.router.fields["grpc"])
        cls.stub = chat_pb2_grpc.ChatServiceStub(cls.channel)
        cls.host, port = cls.router.fields["http"].rsplit(":", 1)
        cls.port = int(port)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.worker.stop()
        cls.router.stop()

    def chat(self, token, request):
        return list(self.stub.Chat(request, metadata=[("authorization", "Bearer " + token)],
                                   timeout=60))

    def resume(self, token, request_id):
        return list(self.stub.Resume(chat_pb2.ResumeRequest(request_id=request_id, from_index=0),
                                     metadata=[("authorization", "Bearer " + token)], timeout=60))

    def refusal(self, token, request_id):
        """The status and details a Resume that must fail gets, with the id made generic."""
        with self.assertRaises(grpc.RpcError) as caught:
            self.resume(token, request_id)
        return caught.exception.code(), caught.exception.details().replace(request_id, "ID")

    def unknown(self):
        return self.refusal(self.alice, "unknown-" + secrets.token_hex(4))

    def get_receipt(self, token, request_id):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.request("GET", "/v1/receipts/" + request_id,
                     headers={"Authorization": "Bearer " + token})
        res = conn.getresponse()
        body = res.read().decode()
        conn.close()
        return res.status, body.replace(request_id, "ID")

    @staticmethod
    def texts(events):
        return [e.token.text for e in events if e.HasField("token")]

    def test_a_finished_request_is_for_its_owner_and_the_router_token_only(self):
        request = chat_request("alice's secret question", max_tokens=6)
        events = self.chat(self.alice, request)
        self.assertEqual(events[-1].WhichOneof("event"), "done", events[-1])
        self.assertTrue(events[-1].done.HasField("receipt"),
                        "the worker signs, the router countersigns")
        answer = self.texts(events)
        rid = request.request_id
        for token in (self.alice, self.token):
            resumed = self.resume(token, rid)
            self.assertEqual(self.texts(resumed), answer)
            self.assertEqual(resumed[-1].WhichOneof("event"), "done")
        unknown = self.unknown()
        self.assertEqual(unknown[0], grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.refusal(self.bob, rid), unknown,
                         "bob learns nothing, not even that it exists")
        # The receipt: alice and the router token read it; bob gets the unknown id's 404.
        for token in (self.alice, self.token):
            status, body = self.get_receipt(token, rid)
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["object"], "tidelane.receipt")
        unknown_receipt = self.get_receipt(self.alice, "unknown-" + secrets.token_hex(4))
        self.assertEqual(unknown_receipt[0], 404)
        self.assertEqual(json.loads(unknown_receipt[1])["error"]["code"], "receipt_not_found")
        self.assertEqual(self.get_receipt(self.bob, rid), unknown_receipt)
        # Bob cannot take the id over either: his request with it is refused and alice's stays.
        hijack = chat_request("bob's question under alice's id")
        hijack.request_id = rid
        with self.assertRaises(grpc.RpcError) as caught:
            self.chat(self.bob, hijack)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(self.texts(self.resume(self.alice, rid)), answer)
        self.assertEqual(self.get_receipt(self.alice, rid)[0], 200)

    def test_http_requests_belong_to_their_token_too(self):
        status, _, payload = http_call(self.host, self.port, self.bob, {
            "model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(status, 200, payload)
        rid = json.loads(payload)["id"]
        self.assertEqual(self.get_receipt(self.bob, rid)[0], 200)
        self.assertEqual(self.get_receipt(self.token, rid)[0], 200)
        unknown_receipt = self.get_receipt(self.bob, "unknown-" + secrets.token_hex(4))
        self.assertEqual(self.get_receipt(self.alice, rid), unknown_receipt)
        self.assertEqual(self.refusal(self.alice, rid), self.unknown())
        self.assertTrue(self.texts(self.resume(self.bob, rid)))

    def test_a_live_request_is_followed_only_by_its_owner_and_the_router(self):
        request = chat_request("a long answer, please", max_tokens=2000)
        rid = request.request_id
        stream = self.stub.Chat(request, metadata=[("authorization", "Bearer " + self.alice)],
                                timeout=120)
        first = None
        for event in stream:
            if event.HasField("token"):
                first = event
                break
        self.assertIsNotNone(first, "the request produced a token")
        followed = {}

        def follow(name, token):
            try:
                followed[name] = self.resume(token, rid)
            except grpc.RpcError as e:  # recorded, asserted below
                followed[name] = e

        threads = [threading.Thread(target=follow, args=(n, t))
                   for n, t in (("alice", self.alice), ("router", self.token))]
        for t in threads:
            t.start()
        # While it runs, bob gets what an unknown id gets.
        self.assertEqual(self.refusal(self.bob, rid), self.unknown())
        # Nor can he take the running request's id: his request (admitted and placed while
        # the ledger looked the id up) is refused, and none of it reaches alice's record.
        hijack = chat_request("bob's question under alice's running id", max_tokens=50)
        hijack.request_id = rid
        with self.assertRaises(grpc.RpcError) as caught:
            self.chat(self.bob, hijack)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        # Nor can alice start it over while it runs (a second answer would stream into the
        # first one's record): she is told to Resume it.
        again = chat_request("alice's question again under her running id", max_tokens=50)
        again.request_id = rid
        with self.assertRaises(grpc.RpcError) as caught:
            self.chat(self.alice, again)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.assertIn("Resume", caught.exception.details())
        rest = list(stream)
        self.assertEqual(rest[-1].WhichOneof("event"), "done", "bob's attempt did not disturb it")
        answer = [first.token.text] + self.texts(rest)
        for t in threads:
            t.join(timeout=60)
        for name in ("alice", "router"):
            self.assertIsInstance(followed[name], list, f"{name}: {followed[name]}")
            self.assertEqual(self.texts(followed[name]), answer, name)
        self.assertEqual(self.texts(self.resume(self.alice, rid)), answer,
                         "the ledger holds alice's answer alone")

    def test_a_strangers_request_being_recorded_under_the_id_does_not_hold_it(self):
        """Bob sends the id of alice's finished request while the ledger is slow to record
        anything (the test holds its write lock, as a slow disk would), and alice then sends
        her id again. Bob's request, started and waiting for the disk, does not hold the id:
        alice's retry is not refused for it. Once the disk is free the ledger, which knows whose
        the id is, refuses bob and records alice's retry, which answers whole."""
        first = chat_request("alice's first question", max_tokens=6)
        self.chat(self.alice, first)
        rid = first.request_id
        disk = sqlite3.connect(os.path.join(self.work, "data", "ledger.sqlite3"),
                               isolation_level=None)
        disk.execute("BEGIN IMMEDIATE")
        try:
            hijack = chat_request("bob's question under alice's id")
            hijack.request_id = rid
            bob = self.stub.Chat(hijack, metadata=[("authorization", "Bearer " + self.bob)],
                                 timeout=60)
            # The pauses give the router time to start each request (which then waits for the
            # disk, within its 5 s busy timeout); in whichever order they start, the outcome
            # asserted below is the same.
            time.sleep(0.5)
            retry = chat_request("alice's question again", max_tokens=6)
            retry.request_id = rid
            alice = self.stub.Chat(retry, metadata=[("authorization", "Bearer " + self.alice)],
                                   timeout=60)
            time.sleep(0.5)
        finally:
            disk.execute("ROLLBACK")
            disk.close()
        with self.assertRaises(grpc.RpcError) as caught:
            list(bob)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        events = list(alice)
        self.assertEqual(events[-1].WhichOneof("event"), "done", events)
        self.assertEqual(self.texts(self.resume(self.alice, rid)), self.texts(events))

    def test_resumes_of_a_finished_request_at_once_all_get_its_answer(self):
        """Several Resumes of one finished request at the same moment (a client on two devices,
        say): each gets the whole stored answer and its Done, none an interruption."""
        request = chat_request("a finished answer, read twice at once", max_tokens=300)
        answer = self.texts(self.chat(self.alice, request))
        for _ in range(10):
            results = [None, None, None]

            def read(i):
                results[i] = self.resume(self.alice, request.request_id)

            threads = [threading.Thread(target=read, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for events in results:
                self.assertEqual(events[-1].WhichOneof("event"), "done", events[-1])
                self.assertEqual(self.texts(events), answer)

    def test_rows_of_a_schema2_ledger_are_for_the_router_token_only(self):
        resumed = self.resume(self.token, self.LEGACY_ID)
        self.assertEqual(self.texts(resumed), self.LEGACY_TOKENS)
        self.assertEqual(resumed[-1].done.finish_reason, "stop")
        unknown = self.unknown()
        self.assertEqual(self.refusal(self.alice, self.LEGACY_ID), unknown)
        self.assertEqual(self.refusal(self.bob, self.LEGACY_ID), unknown)


class NoSecretsLeak(unittest.TestCase):
    def test_tokens_and_keys_appear_in_no_log_crash_output_or_data_file(self):
        work = os.path.join(WORK, "leak")
        os.makedirs(work)
        token = "tok" + secrets.token_hex(20)
        token_file = write_secret(os.path.join(work, "token"), token + "\n")
        client = "cli" + secrets.token_hex(20)
        clients = write_secret(os.path.join(work, "clients"), client + "\n")
        router = start_router(work, token_file, "--client-tokens-file", clients)
        worker = start_worker(work, router, token_file, "leak-worker", "--identity-file",
                              os.path.join(work, "worker.key"))
        host, port = router.fields["http"].rsplit(":", 1)
        wrong = "wrong" + secrets.token_hex(20)
        status, _, _ = http_call(host, int(port), client, {
            "model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hello"}]})
        self.assertEqual(status, 200)
        self.assertEqual(http_call(host, int(port), wrong, {"model": MODEL})[0], 401)
        channel = grpc.insecure_channel(router.fields["grpc"])
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        with self.assertRaises(grpc.RpcError):
            list(stub.Chat(chat_request("hi"), metadata=[("authorization", "Bearer " + wrong)]))
        list(stub.Chat(chat_request("hi"), metadata=[("authorization", "Bearer " + token)]))
        channel.close()
        # A crash: what the router prints as it dies must not carry a secret either.
        worker.stop()
        router.stop(signal.SIGABRT)
        secrets_seen = {"router token": token, "client token": client, "wrong token": wrong}
        # The receipt-signing seeds ("tidelane-ed25519-seed-v1 <hex>").
        for key_file in (os.path.join(work, "worker.key"), os.path.join(work, "data", "router.key")):
            with open(key_file) as f:
                secrets_seen[os.path.basename(key_file)] = f.read().split()[1]
        for root, _, files in os.walk(work):
            for name in files:
                path = os.path.join(root, name)
                if name in ("token", "clients") or name.endswith(".key"):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                for what, secret in secrets_seen.items():
                    self.assertNotIn(secret.encode(), data, f"{what} found in {path}")
        # The logs were written (so the search above looked at something real).
        with open(router.log_path) as f:
            self.assertIn("leak-worker", f.read())


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
