#!/usr/bin/python3
"""A client that is not ours: Debian's python3-grpcio, with stubs generated here from the
.proto files by protoc and grpc_python_plugin, chats with a real tidelane-router and
tidelane-worker started as child processes on free loopback ports.

Usage: grpc_client_test.py BIN_DIR PROTO_DIR
"""
import os
import secrets
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import generate_stubs, start, start_router_and_worker  # noqa: E402

BIN_DIR, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

WORK = tempfile.mkdtemp(prefix="tidelane-pytest-")
generate_stubs(PROTO_DIR, WORK)

import grpc  # noqa: E402
from tidelane.v1 import chat_pb2, chat_pb2_grpc, common_pb2  # noqa: E402
from tidelane.v1 import monitor_pb2, monitor_pb2_grpc  # noqa: E402
import reflection_v1alpha_pb2 as reflection_pb2  # noqa: E402
import reflection_v1alpha_pb2_grpc as reflection_pb2_grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402




class RouterFromPython(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.token, cls.router, cls.worker, fields = start_router_and_worker(
            BIN_DIR, WORK, "high", "py-worker")
        cls.address = fields["grpc"]
        cls.channel = grpc.insecure_channel(cls.address)
        cls.stub = chat_pb2_grpc.ChatServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        for p in (cls.worker, cls.router):
            p.terminate()
            p.wait(timeout=10)
        shutil.rmtree(WORK, ignore_errors=True)

    def request(self, text):
        return chat_pb2.ChatRequest(
            request_id="py-" + secrets.token_hex(4), user="python",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=16))

    def test_chat_streams_accepted_routed_tokens_done(self):
        events = list(self.stub.Chat(self.request("hello from python"),
                                     metadata=[("authorization", "Bearer " + self.token)]))
        kinds = [e.WhichOneof("event") for e in events]
        self.assertEqual(kinds[0], "accepted")
        self.assertEqual(kinds[1], "routed")
        self.assertEqual(events[1].routed.node, "py-worker")
        self.assertEqual(kinds[-1], "done")
        tokens = [e.token for e in events if e.HasField("token")]
        self.assertGreater(len(tokens), 0)
        self.assertEqual([t.index for t in tokens], list(range(len(tokens))))
        self.assertEqual(events[-1].done.usage.completion_tokens, len(tokens))
        self.assertGreater(events[-1].done.timings.ttft_ms, 0)

    def test_wrong_token_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.Chat(self.request("hi"), metadata=[("authorization", "Bearer nope")]))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_missing_token_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.ListModels(chat_pb2.ListModelsRequest())
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_list_models_names_the_synthetic_model(self):
        reply = self.stub.ListModels(chat_pb2.ListModelsRequest(),
                                     metadata=[("authorization", "Bearer " + self.token)])
        self.assertEqual([m.id for m in reply.models], ["tidelane-synthetic"])

    def test_empty_conversation_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.Chat(chat_pb2.ChatRequest(request_id="empty"),
                                metadata=[("authorization", "Bearer " + self.token)]))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def reflect(self, *requests):
        """One reflection stream, one answer per request, in order."""
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        return list(stub.ServerReflectionInfo(iter(requests), timeout=30))

    def test_reflection_lists_every_service(self):
        [answer] = self.reflect(reflection_pb2.ServerReflectionRequest(list_services=""))
        self.assertEqual(sorted(s.name for s in answer.list_services_response.service),
                         ["grpc.reflection.v1alpha.ServerReflection", "tidelane.v1.ChatService",
                          "tidelane.v1.MonitorService", "tidelane.v1.RegistryService"])

    def test_reflection_schema_is_enough_for_a_generic_client_to_call(self):
        """What grpcurl does: fetch the file declaring a service, build the message types
        from it alone (no generated code), and call a method with them."""
        [answer] = self.reflect(reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="tidelane.v1.ChatService"))
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in answer.file_descriptor_response.file_descriptor_proto]
        self.assertEqual(files[0].name, "tidelane/v1/chat.proto")
        self.assertIn("tidelane/v1/common.proto", [f.name for f in files])
        pool = descriptor_pool.DescriptorPool()
        pending = list(files)
        while pending:  # a file goes in once everything it imports is in
            ready = [f for f in pending
                     if all(d in {g.name for g in files if g not in pending} for d in f.dependency)]
            self.assertTrue(ready, "the answer lacks a file that another one imports")
            for f in ready:
                pool.Add(f)
                pending.remove(f)
        method = pool.FindServiceByName("tidelane.v1.ChatService").FindMethodByName("ListModels")
        factory = message_factory.MessageFactory(pool)
        request_class = factory.GetPrototype(method.input_type)
        reply_class = factory.GetPrototype(method.output_type)
        call = self.channel.unary_unary("/tidelane.v1.ChatService/ListModels",
                                        request_serializer=request_class.SerializeToString,
                                        response_deserializer=reply_class.FromString)
        reply = call(request_class(), metadata=[("authorization", "Bearer " + self.token)])
        self.assertEqual([m.id for m in reply.models], ["tidelane-synthetic"])

    def test_reflection_answers_an_unknown_name_with_not_found_and_goes_on(self):
        missing, found = self.reflect(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="tidelane.v1.Nope"),
            reflection_pb2.ServerReflectionRequest(file_by_filename="tidelane/v1/monitor.proto"))
        self.assertEqual(missing.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
        self.assertIn("tidelane.v1.Nope", missing.error_response.error_message)
        self.assertEqual(
            descriptor_pb2.FileDescriptorProto.FromString(
                found.file_descriptor_response.file_descriptor_proto[0]).name,
            "tidelane/v1/monitor.proto")


class OwnRouter(unittest.TestCase):
    """A test with a router and one worker of its own (more with start_worker), on free
    loopback ports, stopped and removed after the test whatever its outcome, even when the
    test froze one of them with SIGSTOP. `workers` maps names to worker processes."""

    def start_router(self, prefix, profile, name, worker_args=(), router_args=(),
                     channel_options=()):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.addCleanup(shutil.rmtree, self.work, True)
        self.token, self.router, worker, self.fields = start_router_and_worker(
            BIN_DIR, self.work, profile, name, worker_args, router_args)
        self.workers = {name: worker}

        def stop():
            import signal
            for p in (*self.workers.values(), self.router):
                p.send_signal(signal.SIGCONT)
                p.terminate()
                p.wait(timeout=10)

        self.addCleanup(stop)
        self.channel = grpc.insecure_channel(self.fields["grpc"], options=list(channel_options))
        self.addCleanup(self.channel.close)
        self.stub = chat_pb2_grpc.ChatServiceStub(self.channel)
        self.auth = [("authorization", "Bearer " + self.token)]

    def start_worker(self, profile, name, worker_args=()):
        """Another worker joined to this test's router (stopped with it)."""
        self.workers[name], _ = start(
            [os.path.join(BIN_DIR, "tidelane-worker"), "--router", self.fields["grpc"],
             "--auth-token-file", os.path.join(self.work, "token"), "--profile", profile,
             "--name", name, *worker_args], "tidelane-worker ready")

    @staticmethod
    def request(prefix, text, max_tokens):
        return chat_pb2.ChatRequest(
            request_id=prefix + secrets.token_hex(6), user="python",
            messages=[common_pb2.ChatMessage(role="user", content=text)],
            sampling=common_pb2.SamplingParams(max_tokens=max_tokens))

    def chat(self, request, timeout=60):
        return list(self.stub.Chat(request, metadata=self.auth, timeout=timeout))

    def resume(self, request_id, timeout=30):
        return list(self.stub.Resume(chat_pb2.ResumeRequest(request_id=request_id),
                                     metadata=self.auth, timeout=timeout))

    def http(self, method, path, body=None):
        """(status, body text) of one call to the router's HTTP API."""
        import http.client
        import json
        conn = http.client.HTTPConnection(*self.fields["http"].rsplit(":", 1), timeout=60)
        headers = {"Authorization": "Bearer " + self.token}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        return response.status, text

    def metric(self, sample):
        """The value of one /metrics sample, named with its labels."""
        _, body = self.http("GET", "/metrics")
        return int(next(l for l in body.splitlines() if l.startswith(sample + " ")).split()[-1])

    def lock_ledger(self):
        """Takes the ledger's write lock, as a slow or stuck disk would; ROLLBACK lets it go."""
        import sqlite3
        disk = sqlite3.connect(os.path.join(self.work, "data", "ledger.sqlite3"),
                               isolation_level=None)
        disk.execute("BEGIN IMMEDIATE")
        return disk

    def assertWhole(self, events, note=None):
        """Ends with Done, every token once and in order, as many as the Done counts."""
        self.assertEqual(events[-1].WhichOneof("event"), "done", note or events)
        indices = [e.token.index for e in events if e.HasField("token")]
        self.assertEqual(indices, list(range(len(indices))), note)
        self.assertEqual(len(indices), events[-1].done.usage.completion_tokens, note)


class BurstToASlowReader(OwnRouter):
    """An instant worker bursts its answer at a client that is slow to start reading and
    grants a tiny HTTP/2 window: the router queues the events behind the client's flow control
    and sends the Done with the status in one write once the stream closes. Every token arrives
    once, in order, Done comes last with an OK status, and the ledger kept the same answer
    (Resume from 0 replays it)."""

    def test_every_token_in_order_then_done_and_the_ledger_agrees(self):
        import time
        # A window of a few events, never grown, so the router's writes wait on the client.
        self.start_router("tidelane-pyburst-", "high", "instant",
                          worker_args=["--time-scale", "0"],
                          channel_options=[("grpc.http2.lookahead_bytes", 64),
                                           ("grpc.http2.bdp_probe", 0)])
        request = self.request("burst-", "a long answer, please", 64)
        call = self.stub.Chat(request, metadata=self.auth, timeout=60)
        events = [next(call)]
        # Not reading yet: the whole answer (Done included) queues in the router.
        time.sleep(0.5)
        events.extend(call)
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertWhole(events)
        self.assertEqual([e.WhichOneof("event") for e in events].count("done"), 1)
        tokens = [e.token for e in events if e.HasField("token")]
        self.assertGreaterEqual(len(tokens), 12)  # the synthetic answer's shortest length
        replay = self.resume(request.request_id)
        self.assertEqual([e.token.text for e in replay if e.HasField("token")],
                         [t.text for t in tokens])
        self.assertEqual(replay[-1].WhichOneof("event"), "done")


class SurgeAtTheFrontDoor(OwnRouter):
    """A small node (4 slots) and 16 users at once: those beyond capacity hear their place in
    line at once, positions and waits are real, and every one of them is answered."""

    def test_queued_users_hear_their_place_and_all_are_answered(self):
        import threading
        self.start_router("tidelane-pysurge-", "low", "small")
        results = [None] * 16

        def user(i):
            request = chat_pb2.ChatRequest(
                request_id=f"surge-{i}", user=f"user-{i}",
                messages=[common_pb2.ChatMessage(role="user", content=f"question {i}")],
                sampling=common_pb2.SamplingParams(max_tokens=6))
            results[i] = self.chat(request, timeout=120)

        threads = [threading.Thread(target=user, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        firsts = [events[0] for events in results]
        self.assertTrue(all(e.WhichOneof("event") == "accepted" for e in firsts))
        queued = [e.accepted for e in firsts if e.accepted.queue_position > 0]
        self.assertGreaterEqual(len(queued), 8, "16 users on 4 slots: most must queue")
        self.assertTrue(all(a.eta_ms > 0 for a in queued))
        for events in results:
            self.assertWhole(events)


class StalledWorker(OwnRouter):
    """A worker frozen mid-answer (SIGSTOP: its connections stay open, it just says nothing)
    is taken for stalled once it has been silent past the router's stall bound: the client
    hears Redirected and gets the rest of the answer from the other worker, every token once
    and in order, and the request ends with Done."""

    def test_a_silent_worker_is_redirected_away_from_without_loss(self):
        import signal
        self.start_router("tidelane-pystall-", "low", "first",
                          router_args=["--stall-timeout-ms", "1000"])
        self.start_worker("low", "second")
        request = self.request("stall-", "tell me about tides", 48)
        call = self.stub.Chat(request, metadata=self.auth, timeout=60)
        events, stopped = [], None
        for e in call:
            events.append(e)
            if e.HasField("routed"):
                routed_to = e.routed.node
            tokens = [x for x in events if x.HasField("token")]
            if len(tokens) == 3 and stopped is None:
                stopped = routed_to
                self.workers[stopped].send_signal(signal.SIGSTOP)
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        kinds = [e.WhichOneof("event") for e in events]
        redirects = [e.redirected for e in events if e.HasField("redirected")]
        self.assertEqual(len(redirects), 1)
        self.assertEqual(redirects[0].from_node, stopped)
        self.assertNotEqual(redirects[0].to_node, stopped)
        self.assertIn("went silent", redirects[0].reason)
        self.assertIn("1000 ms", redirects[0].reason)
        before = kinds.index("redirected")
        self.assertEqual(redirects[0].resume_index, kinds[:before].count("token"))
        self.assertWhole(events)
        tokens = [e.token for e in events if e.HasField("token")]
        # The same answer the ledger kept, and the one the other worker would have given.
        replay = self.resume(request.request_id)
        self.assertEqual([e.token.text for e in replay if e.HasField("token")],
                         [t.text for t in tokens])
        # The monitor shows the frozen worker as down, the other one ready.
        watch = monitor_pb2_grpc.MonitorServiceStub(self.channel).Watch(
            monitor_pb2.WatchRequest(interval_ms=100), metadata=self.auth, timeout=30)
        states = {n.name: n.state for n in next(watch).nodes}
        watch.cancel()
        self.assertEqual(states[stopped], monitor_pb2.NODE_STATE_DOWN)
        self.assertEqual(states[redirects[0].to_node], monitor_pb2.NODE_STATE_READY)


class BusyWorkerIsNotStalled(OwnRouter):
    """A worker that says nothing on the call for longer than the stall bound because it is
    busy (a long prompt's prefill on a slow node) is not taken for stalled: its telemetry
    keeps coming, so the answer is not moved and arrives whole from that worker."""

    def test_a_long_prefill_is_not_redirected(self):
        self.start_router("tidelane-pybusy-", "low", "slow",
                          router_args=["--stall-timeout-ms", "1000"])
        # ~600 prompt tokens at the low profile's 250 tokens/s: ~2.4 s before the first
        # token, over twice the stall bound.
        events = self.chat(self.request("busy-", "tide " * 600, 3))
        kinds = [e.WhichOneof("event") for e in events]
        self.assertNotIn("redirected", kinds)
        self.assertEqual(kinds[-1], "done")
        self.assertGreaterEqual(events[-1].done.timings.ttft_ms, 2000)
        self.assertEqual(kinds.count("token"), events[-1].done.usage.completion_tokens)


class ClientsThatLeaveWhileTheirRequestIsBeingRecorded(OwnRouter):
    """Clients that leave mid-answer while the router is still recording their requests: the
    test holds the ledger's write lock (as a slow disk would), so the router admits, places
    and starts each request but cannot commit it yet; the clients cancel; then the lock is let
    go. The router goes on serving, and every one of those requests is in the ledger, resumable
    to a whole answer: a conversation is not lost because its client left early."""

    def test_requests_cancelled_before_their_commit_are_kept_and_the_router_goes_on(self):
        import time
        self.start_router("tidelane-pyleave-", "low", "slow")
        # The router's busy timeout is 5 s: the lock is held well under it, so the commits
        # wait and then succeed. The pauses only give the router time to act; nothing
        # below depends on how long anything took.
        disk = self.lock_ledger()
        calls, ids = [], []
        for i in range(4):
            r = self.request("leave-", f"question {i}", 64)
            calls.append(self.stub.Chat(r, metadata=self.auth, timeout=60))
            ids.append(r.request_id)
        time.sleep(0.5)
        for call in calls:
            call.cancel()
        time.sleep(0.5)
        disk.execute("ROLLBACK")
        disk.close()

        after = self.chat(self.request("leave-", "anyone there?", 64), timeout=30)
        self.assertEqual(after[-1].WhichOneof("event"), "done", after)
        for rid in ids:
            self.assertWhole(self.resume(rid), rid)


class ARetryWhileTheFirstRequestIsBeingRecorded(OwnRouter):
    """A client that sends a request id again while the router is still recording the first
    request with it (the test holds the ledger's write lock, as a slow disk would): the retry is
    refused at once, ALREADY_EXISTS, and told to Resume, rather than waiting for the disk and
    then streaming a second answer into the first one's record. The first answers whole, its
    record holds that answer, and once it has ended the id may be sent again."""

    def test_the_retry_is_refused_and_the_first_answers_whole_alone(self):
        import time
        self.start_router("tidelane-pyretry-", "low", "slow")
        disk = self.lock_ledger()
        first = self.request("retry-", "the first question", 64)
        call = self.stub.Chat(first, metadata=self.auth, timeout=60)
        # Placed on the worker while its record waits for the disk: the router has started it.
        deadline = time.monotonic() + 30
        while self.metric("tidelane_in_flight") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.metric("tidelane_in_flight"), 1, "the first request was placed")
        again = self.request("retry-", "the first question, sent again", 8)
        again.request_id = first.request_id
        # Within the router's busy timeout (5 s): a retry that waited for the disk instead of
        # being refused runs out of time here.
        with self.assertRaises(grpc.RpcError) as caught:
            self.chat(again, timeout=3)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.ALREADY_EXISTS,
                         caught.exception.details())
        self.assertIn("Resume it", caught.exception.details())
        disk.execute("ROLLBACK")
        disk.close()

        events = list(call)
        self.assertWhole(events)
        answer = [e.token.text for e in events if e.HasField("token")]
        self.assertTrue(answer)
        replay = self.resume(first.request_id)
        self.assertWhole(replay)
        self.assertEqual([e.token.text for e in replay if e.HasField("token")], answer,
                         "the record holds the first answer alone")
        # The first has ended: the same id is a new request now, answered whole on its own.
        retried = self.chat(again)
        self.assertWhole(retried)
        self.assertEqual(
            [e.token.text for e in self.resume(first.request_id) if e.HasField("token")],
            [e.token.text for e in retried if e.HasField("token")],
            "the retry's record holds the retry's answer alone")


class ALedgerThatCannotRecordInTime(OwnRouter):
    """The ledger stays locked past the router's busy timeout (5 s) while an instant worker has
    already answered: the answer was produced while the request was being recorded, but the
    record failed, so the client gets the refusal alone (no Routed, no token, no Done), nothing
    is kept under its id, and the router serves the next request once the disk is free."""

    def outcomes(self):
        """tidelane_requests_total's served and failed counts and the TTFT histogram's sample
        count, from /metrics."""
        return {"served": self.metric('tidelane_requests_total{outcome="served"}'),
                "failed": self.metric('tidelane_requests_total{outcome="failed"}'),
                # Served requests' latencies: the refused one must not be among them.
                "ttft_samples": self.metric("tidelane_ttft_seconds_count")}

    def test_an_answer_produced_before_a_failed_record_is_not_sent(self):
        self.start_router("tidelane-pylocked-", "high", "instant", ["--time-scale", "0"])
        disk = self.lock_ledger()
        refused = self.request("locked-", "an answer nobody may see", 8)
        events = self.chat(refused)  # ends after ~5 s
        disk.execute("ROLLBACK")
        disk.close()
        self.assertEqual([e.WhichOneof("event") for e in events], ["error"], events)
        self.assertEqual(events[0].error.code, chat_pb2.ERROR_CODE_INTERNAL)
        self.assertIn("cannot record requests", events[0].error.message)
        with self.assertRaises(grpc.RpcError) as caught:
            self.resume(refused.request_id)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(self.outcomes(), {"served": 0, "failed": 1, "ttft_samples": 0},
                         "the refused request counts once, as failed, not as served")
        after = self.chat(self.request("locked-", "and now?", 8), timeout=30)
        self.assertEqual(after[-1].WhichOneof("event"), "done", after)
        self.assertEqual(self.outcomes(), {"served": 1, "failed": 1, "ttft_samples": 1})


class AClientThatLeavesDuringALongPrefill(OwnRouter):
    """A client that leaves while a slow node still reads its long prompt: the router cancels
    the worker call within a housekeeping round (0.5 s) instead of at the first token, so the
    node is free again long before the prefill would have ended (about 24 s here), and the
    worker stops reading the prompt too. The request stays in the ledger, resumable."""

    def test_the_node_is_freed_without_waiting_for_the_first_token(self):
        import time
        self.start_router("tidelane-pyprefill-", "low", "slow")
        # ~6,000 prompt tokens at the low profile's 250 a second.
        request = self.request("prefill-", "tide " * 6000, 8)
        call = self.stub.Chat(request, metadata=self.auth, timeout=120)
        for event in call:
            if event.HasField("routed"):
                break
        self.assertEqual(self.metric("tidelane_in_flight"), 1)
        call.cancel()
        deadline = time.monotonic() + 10  # well inside the prefill
        while self.metric("tidelane_in_flight") != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.metric("tidelane_in_flight"), 0,
                         "the node still holds a request nobody waits for")


class FullLedger(OwnRouter):
    """A router whose ledger cannot take a request (--ledger-max-mb caps it, as a small disk
    would): that request gets a clear error and nothing else, over gRPC and over HTTP (it was
    admitted and placed while its record was being written, and is stopped unseen); an answer
    streaming meanwhile goes on whole and the ledger keeps all of it; requests that fit are
    still served."""

    def test_a_request_the_ledger_cannot_keep_is_refused_and_nothing_else_is_disturbed(self):
        import json
        self.start_router("tidelane-pyfull-", "high", "full",
                          router_args=["--ledger-max-mb", "0.25"])
        running = self.request("full-", "a long answer, please", 200)
        call = self.stub.Chat(running, metadata=self.auth, timeout=120)
        streamed = []
        for event in call:
            streamed.append(event)
            if event.HasField("token"):
                break
        self.assertTrue(streamed[-1].HasField("token"), "the first answer is streaming")

        # 400 KB of prompt: under the router's prompt limit, over what the ledger holds.
        big = self.request("full-", "tide " * 80000, 8)
        events = self.chat(big)
        self.assertEqual([e.WhichOneof("event") for e in events], ["error"], events)
        self.assertEqual(events[0].error.code, chat_pb2.ERROR_CODE_INTERNAL)
        self.assertIn("cannot record requests", events[0].error.message)
        self.assertIn("full", events[0].error.message)
        self.assertGreater(events[0].error.retry_after_ms, 0)
        with self.assertRaises(grpc.RpcError) as caught:
            self.resume(big.request_id)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND,
                         "nothing was kept under the refused request's id")

        status, text = self.http("POST", "/v1/chat/completions", {
            "model": "tidelane-synthetic", "max_tokens": 8,
            "messages": [{"role": "user", "content": "tide " * 80000}]})
        body = json.loads(text)
        self.assertEqual(status, 500, body)
        self.assertEqual(body["error"]["type"], "server_error")
        self.assertIn("cannot record requests", body["error"]["message"])

        streamed.extend(call)
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertWhole(streamed)
        replay = self.resume(running.request_id, timeout=60)
        self.assertEqual([e.token.text for e in replay if e.HasField("token")],
                         [e.token.text for e in streamed if e.HasField("token")],
                         "the ledger kept the whole answer")

        after = self.chat(self.request("full-", "still there?", 4))
        self.assertEqual(after[-1].WhichOneof("event"), "done", after)

    def test_a_bounded_ledger_keeps_answering_by_letting_its_oldest_answers_go(self):
        """0.25 MiB holds ~45 of these requests (a prompt and a receipt each, in pages SQLite
        fills by half or more): 400 in a row are all answered whole; the oldest answers made
        room (Resume finds nothing, /metrics counts them), never all of them at once (a fixed
        batch of 64 once emptied this ledger every ~45 requests): the tenth newest is always
        resumable, and so is the newest at the end."""
        self.start_router("tidelane-pyroom-", "high", "room", worker_args=["--time-scale", "0"],
                          router_args=["--ledger-max-mb", "0.25"])
        answers = []
        for i in range(400):
            request = self.request("room-", "%04d " % i + "tide " * 200, 4)
            events = self.chat(request)
            self.assertWhole(events, "request %d" % i)
            answers.append((request.request_id,
                            [e.token.text for e in events if e.HasField("token")]))
            if i >= 10:
                earlier = self.resume(answers[i - 10][0])
                self.assertEqual([e.token.text for e in earlier if e.HasField("token")],
                                 answers[i - 10][1], "request %d, ten before %d" % (i - 10, i))
        with self.assertRaises(grpc.RpcError) as caught:
            self.resume(answers[0][0])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND,
                         "the oldest answer made room")
        replay = self.resume(answers[-1][0])
        self.assertWhole(replay)
        self.assertEqual([e.token.text for e in replay if e.HasField("token")], answers[-1][1])
        self.assertGreater(self.metric('tidelane_ledger_pruned_requests_total{reason="room"}'), 0)
        self.assertEqual(
            self.metric('tidelane_ledger_pruned_requests_total{reason="expired"}'), 0)
        database = self.metric('tidelane_ledger_bytes{file="database"}')
        self.assertGreater(database, 0)
        self.assertLessEqual(database, 256 * 1024, "the bound holds")


if __name__ == "__main__":
    unittest.main(verbosity=2)
