"""Client behaviour against a scripted fake server: timeouts, prompts, error mapping, framing
limits, lost connections, abort from another thread, recovery, TLS. Client calls run in
background threads; the test thread plays the server."""

import json
import ssl
import tempfile
import threading
import time
import unittest

from harness import Background, FakeServer, make_pki
import eftd_pos
from eftd_pos import Client, ConnectionLost, OrderUnknown, ServerError, Timeout


def pace(seconds: float) -> None:
    """The fake server's own pacing between two messages it sends (part of the scenario, not
    a wait for an event)."""
    threading.Event().wait(seconds)


def result(rid, order_no, outcome="approved", **extra):
    return {"type": "result", "v": 1, "id": rid, "order_no": order_no, "outcome": outcome, **extra}


def status(rid, order_no, stage="card", text="Insert card"):
    msg = {"type": "status", "v": 1, "order_no": order_no, "stage": stage, "text": text}
    if rid is not None:
        msg["id"] = rid
    return msg


class FakeServerTest(unittest.TestCase):
    def setUp(self):
        self.server = FakeServer()
        self.addCleanup(self.server.close)

    def client(self, **kw) -> Client:
        c = Client("127.0.0.1", self.server.port, **kw)
        self.addCleanup(c.close)
        return c

    def logged_in(self, **kw):
        c = self.client(**kw)
        login = Background(c.login, "T01", "42")
        conn = self.server.accept()
        seen = conn.login()
        self.assertEqual(login.result(10)["server"], "fake")
        self.assertEqual(seen["till_id"], "T01")
        self.assertEqual(seen["version"], 1)
        self.assertEqual(seen["capabilities"], ["prompt"])
        return c, conn


class InactivityTest(FakeServerTest):
    def test_status_messages_keep_a_long_transaction_alive(self):
        c, conn = self.logged_in(inactivity_timeout=1.5)
        seen = []
        sale = Background(c.sale, "4711", 12500, "PLN", on_status=seen.append)
        req = conn.expect("sale")
        started = time.monotonic()
        for i in range(10):  # 10 x 0.3 s = 3 s: twice the inactivity timeout in total
            conn.send(status(req["id"], "4711", text=f"step {i}"))
            pace(0.3)
        conn.send(result(req["id"], "4711"))
        self.assertEqual(sale.result(10)["outcome"], "approved")
        self.assertGreater(time.monotonic() - started, 3.0)
        self.assertEqual([s["text"] for s in seen], [f"step {i}" for i in range(10)])

    def test_silence_during_a_transaction_is_a_timeout_and_closes_the_connection(self):
        c, conn = self.logged_in(inactivity_timeout=0.5)
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        conn.send(status(req["id"], "4711"))
        started = time.monotonic()
        with self.assertRaises(Timeout) as cm:
            sale.result(10)
        self.assertEqual(cm.exception.code, "pos.timeout")
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(conn.wait_eof(5), "client keeps a doubtful session open")
        with self.assertRaises(ConnectionLost):
            c.ping()

    def test_direct_replies_use_the_reply_timeout(self):
        c, conn = self.logged_in(reply_timeout=0.4, inactivity_timeout=30)
        ping = Background(c.ping)
        conn.expect("heartbeat")
        with self.assertRaises(Timeout):
            ping.result(10)


class PromptTest(FakeServerTest):
    def test_prompt_answered_refused_and_asked_again(self):
        c, conn = self.logged_in()
        asked = []

        def on_prompt(p):
            asked.append(p)
            return "C" if len(asked) == 1 else "B"

        sale = Background(c.sale, "4711", 100, "PLN", on_prompt=on_prompt)
        req = conn.expect("sale")
        conn.send({"type": "prompt", "v": 1, "id": req["id"], "prompt_id": "p9", "order_no": "4711", "kind": "menu",
                   "text": "Pick", "options": ["A", "B"], "timeout_ms": 30000, "default": "A"})
        first = conn.expect("answer")
        self.assertEqual((first["prompt_id"], first["value"]), ("p9", "C"))
        conn.send({"type": "error", "v": 1, "id": first["id"], "code": "pos.bad_field",
                   "message": "field 'value' is not a valid answer to this menu prompt"})
        second = conn.expect("answer")
        self.assertEqual((second["prompt_id"], second["value"]), ("p9", "B"))
        self.assertNotEqual(second["id"], first["id"])
        conn.send(result(req["id"], "4711"))
        self.assertEqual(sale.result(10)["outcome"], "approved")
        self.assertEqual(len(asked), 2)
        self.assertEqual(asked[1]["rejected_value"], "C")
        self.assertIn("not a valid answer", asked[1]["rejected_message"])

    def test_prompt_without_id_late_answer_and_default_without_handler(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")  # no on_prompt: the default goes back at once
        req = conn.expect("sale")
        # prompt.id is optional: the client finds the transaction by order_no.
        conn.send({"type": "prompt", "v": 1, "prompt_id": "sig", "order_no": "4711", "kind": "yes_no",
                   "text": "Signature OK?", "options": ["yes", "no"], "default": "no"})
        ans = conn.expect("answer")
        self.assertEqual((ans["prompt_id"], ans["value"]), ("sig", "no"))
        conn.send({"type": "error", "v": 1, "id": ans["id"], "code": "unknown_prompt", "message": "timed out"})
        conn.send(status(None, "4711", "authorizing", "Authorizing"))
        conn.send(result(req["id"], "4711", "declined", reason={"code": "cashier.signature", "cashier_text": "x"}))
        self.assertEqual(sale.result(10)["outcome"], "declined")

    def test_a_handler_that_raises_does_not_lose_the_result(self):
        c, conn = self.logged_in()

        def broken(_):
            raise RuntimeError("ui crashed")

        sale = Background(c.sale, "4711", 100, "PLN", on_status=broken, on_prompt=broken)
        req = conn.expect("sale")
        conn.send(status(req["id"], "4711"))
        conn.send({"type": "prompt", "v": 1, "id": req["id"], "prompt_id": "n", "order_no": "4711",
                   "kind": "numeric", "text": "Number?"})
        conn.send(result(req["id"], "4711"))
        self.assertEqual(sale.result(10)["outcome"], "approved")


class ErrorMappingTest(FakeServerTest):
    def test_error_reply_becomes_server_error(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        conn.send({"type": "error", "v": 1, "id": req["id"], "code": "busy",
                   "message": "another transaction is running on this till", "order_no": "4711"})
        with self.assertRaises(ServerError) as cm:
            sale.result(10)
        e = cm.exception
        self.assertEqual((e.code, e.order_no), ("busy", "4711"))
        self.assertEqual(e.message, "another transaction is running on this till")
        # The connection stays usable.
        ping = Background(c.ping)
        hb = conn.expect("heartbeat")
        conn.send({"type": "heartbeat_ack", "v": 1, "id": hb["id"]})
        self.assertEqual(ping.result(10)["type"], "heartbeat_ack")

    def test_not_active_names_the_active_server(self):
        c = self.client()
        login = Background(c.login, "T01")
        conn = self.server.accept()
        conn.expect("login")
        conn.send({"type": "error", "v": 1, "code": "not_active", "message": "standby server",
                   "active_server": "10.0.0.2:9100"})
        with self.assertRaises(ServerError) as cm:
            login.result(10)
        self.assertEqual((cm.exception.code, cm.exception.active_server), ("not_active", "10.0.0.2:9100"))

    def test_a_message_with_an_older_epoch_than_seen_ends_the_connection(self):
        c, conn = self.logged_in()
        ping = Background(c.ping)
        hb = conn.expect("heartbeat")
        conn.send({"type": "heartbeat_ack", "v": 1, "epoch": 5, "id": hb["id"]})
        self.assertEqual(ping.result(10)["type"], "heartbeat_ack")
        self.assertEqual(c.epoch, 5)
        # A node still at epoch 4 was deposed when epoch 5 began: its answer is not used.
        ping = Background(c.ping)
        hb = conn.expect("heartbeat")
        conn.send({"type": "heartbeat_ack", "v": 1, "epoch": 4, "id": hb["id"]})
        with self.assertRaises(ConnectionLost) as cm:
            ping.result(10)
        self.assertIn("older than epoch 5", str(cm.exception))
        self.assertEqual(c.epoch, 5)

    def test_a_connection_error_before_close_is_reported_with_the_loss(self):
        c, conn = self.logged_in()
        conn.send({"type": "error", "v": 1, "code": "too_many_connections", "message": "limit reached"})
        conn.close()
        # Wait for the client to notice: its reader thread ends with the connection.
        c._conn._reader.join(10)
        self.assertFalse(c.connected)
        with self.assertRaises(ConnectionLost) as cm:
            c.ping()
        self.assertEqual(cm.exception.server_error.code, "too_many_connections")
        self.assertIn("too_many_connections", str(cm.exception))

    def test_each_request_gets_its_own_reply_type(self):
        c, conn = self.logged_in()
        st = Background(c.status, "4711", "2024-05-01")
        q = conn.expect("status_query")
        self.assertEqual(q["business_date"], "2024-05-01")
        conn.send({"type": "order_status", "v": 1, "id": q["id"], "order_no": "4711", "state": "unknown"})
        self.assertEqual(st.result(10)["state"], "unknown")
        tot = Background(c.totals)
        t = conn.expect("totals")
        self.assertNotIn("business_date", t)
        conn.send({"type": "totals_report", "v": 1, "id": t["id"], "till_id": "T01", "lines": [], "net": {}})
        self.assertEqual(tot.result(10)["till_id"], "T01")


class FramingTest(FakeServerTest):
    def test_tolerated_lines_do_not_disturb_a_transaction(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        rid = req["id"]
        conn.send(b"\n\r\n")  # empty lines
        conn.send(b'{"type":"status","v":1,"id":"' + rid.encode() + b'","order_no":"4711","text":"a"}\r\n')
        conn.send(b'{"type":"news","v":1,"id":"' + rid.encode() + b'"}\n')  # a newer message type
        conn.send(b'{"type":"result","v":2,"id":"' + rid.encode() + b'","order_no":"4711"}\n')  # other version
        conn.send(b"garbage\n")
        line = json.dumps(result(rid, "4711", amount=100, new_field={"x": 1})).encode()
        conn.send(line[:10])
        pace(0.05)
        conn.send(line[10:] + b"\n")
        r = sale.result(10)
        self.assertEqual(r["amount"], 100)
        self.assertEqual(r["new_field"], {"x": 1})

    def test_a_line_of_exactly_65536_bytes_is_read(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        msg = status(req["id"], "4711", text="")
        pad = eftd_pos.MAX_LINE - len(json.dumps(msg, separators=(",", ":")))
        msg["text"] = "x" * pad
        line = json.dumps(msg, separators=(",", ":")).encode()
        self.assertEqual(len(line), eftd_pos.MAX_LINE)
        conn.send(line + b"\n")
        conn.send(result(req["id"], "4711"))
        self.assertEqual(sale.result(10)["outcome"], "approved")

    def test_an_oversize_line_closes_the_connection(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        conn.expect("sale")
        conn.send(b'{"type":"status","v":1,"text":"' + b"x" * (eftd_pos.MAX_LINE + 10))
        with self.assertRaises(ConnectionLost) as cm:
            sale.result(10)
        self.assertEqual(cm.exception.code, "pos.frame_too_large")
        self.assertTrue(conn.wait_eof(5))

    def test_an_oversize_request_is_never_sent(self):
        c, conn = self.logged_in()
        with self.assertRaises(ValueError):
            c.sale("9" * 70000, 100, "PLN")
        ping = Background(c.ping)
        self.assertEqual(conn.expect("heartbeat")["type"], "heartbeat")  # nothing else came first


class LostConnectionTest(FakeServerTest):
    def test_disconnect_mid_transaction_raises_connection_lost(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        conn.send(status(req["id"], "4711"))
        conn.close()
        with self.assertRaises(ConnectionLost) as cm:
            sale.result(10)
        self.assertEqual(cm.exception.code, "pos.disconnected")

    def test_connect_refused_is_connection_lost(self):
        port = self.server.port
        self.server.close()
        with self.assertRaises(ConnectionLost):
            Client("127.0.0.1", port, connect_timeout=2).login("T01")

    def test_close_from_another_thread_ends_a_waiting_sale(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        conn.expect("sale")
        c.close()
        with self.assertRaises(ConnectionLost):
            sale.result(10)
        self.assertTrue(conn.wait_eof(5))


class AbortTest(FakeServerTest):
    def test_abort_from_another_thread_while_the_sale_waits(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        conn.send(status(req["id"], "4711"))
        abort = Background(c.abort, "4711")
        ab = conn.expect("abort")
        self.assertEqual(ab["order_no"], "4711")
        conn.send(status(ab["id"], "4711", "aborting", "Aborting"))
        self.assertEqual(abort.result(10)["stage"], "aborting")
        self.assertFalse(sale.done())
        conn.send(result(req["id"], "4711", "cancelled",
                         reason={"code": "pos.aborted", "cashier_text": "Aborted by the cashier - order 4711"}))
        self.assertEqual(sale.result(10)["outcome"], "cancelled")

    def test_abort_of_nothing_running(self):
        c, conn = self.logged_in()
        abort = Background(c.abort, "1")
        ab = conn.expect("abort")
        conn.send({"type": "error", "v": 1, "id": ab["id"], "code": "unknown_order", "message": "not running",
                   "order_no": "1"})
        with self.assertRaises(ServerError) as cm:
            abort.result(10)
        self.assertEqual(cm.exception.code, "unknown_order")


class RecoverTest(FakeServerTest):
    def lose_a_sale(self):
        c, conn = self.logged_in()
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        conn.close()
        with self.assertRaises(ConnectionLost):
            sale.result(10)
        return c

    def test_recover_waits_while_in_progress_and_returns_the_stored_result(self):
        c = self.lose_a_sale()
        rec = Background(c.recover, "4711", "2024-05-02", poll_interval=0.05, wait=10)
        conn = self.server.accept()
        self.assertEqual(conn.login()["till_id"], "T01")
        q = conn.expect("status_query")
        self.assertEqual((q["order_no"], q["business_date"]), ("4711", "2024-05-02"))
        conn.send({"type": "order_status", "v": 1, "id": q["id"], "order_no": "4711", "state": "in_progress"})
        q = conn.expect("status_query")
        stored = result("9", "4711", receipt={"merchant": ["M"], "customer": ["C"]})
        del stored["type"], stored["v"]
        conn.send({"type": "order_status", "v": 1, "id": q["id"], "order_no": "4711", "state": "approved",
                   "business_date": "2024-05-02", "last_result": stored})
        r = rec.result(10)
        self.assertEqual((r["state"], r["outcome"], r["receipt"]["customer"]), ("approved", "approved", ["C"]))

    def test_recover_of_an_order_the_server_never_saw(self):
        c = self.lose_a_sale()
        rec = Background(c.recover, "4711", wait=10)
        conn = self.server.accept()
        conn.login()
        q = conn.expect("status_query")
        self.assertNotIn("business_date", q)
        conn.send({"type": "order_status", "v": 1, "id": q["id"], "order_no": "4711", "state": "unknown"})
        with self.assertRaises(OrderUnknown):
            rec.result(10)

    def test_recover_follows_not_active_to_the_active_server(self):
        c = self.lose_a_sale()
        active = FakeServer()
        self.addCleanup(active.close)
        rec = Background(c.recover, "4711", wait=10)
        standby = self.server.accept()
        standby.expect("login")
        standby.send({"type": "error", "v": 1, "code": "not_active", "message": "standby",
                      "active_server": f"127.0.0.1:{active.port}"})
        conn = active.accept()
        conn.login()
        q = conn.expect("status_query")
        conn.send({"type": "order_status", "v": 1, "id": q["id"], "order_no": "4711", "state": "reversed",
                   "last_result": {"order_no": "4711", "outcome": "approved"}})
        r = rec.result(10)
        self.assertEqual(r["state"], "reversed")  # what counts: no money moved

    def test_recover_retries_while_the_server_is_unreachable(self):
        c = self.lose_a_sale()
        port = self.server.port
        self.server.close()
        t0 = time.monotonic()
        with self.assertRaises(ConnectionLost):
            c.recover("4711", wait=0.5, poll_interval=0.1)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(c.port, port)


# openssl is installed by tools/lib.sh; a machine without it must fail here, not skip.
class TlsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.pki = make_pki(self.tmp.name, ("T01",))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.pki["server.crt"], self.pki["server.key"])
        ctx.load_verify_locations(self.pki["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.server = FakeServer(tls=ctx)
        self.addCleanup(self.server.close)

    def test_a_sale_over_tls_with_the_till_certificate(self):
        tls = eftd_pos.tls_context(self.pki["ca"], self.pki["till-T01.crt"], self.pki["till-T01.key"])
        c = Client("127.0.0.1", self.server.port, tls=tls)
        self.addCleanup(c.close)
        login = Background(c.login, "T01")
        conn = self.server.accept()
        subject = dict(x[0] for x in conn.sock.getpeercert()["subject"])
        self.assertEqual(subject["commonName"], "T01")
        conn.login()
        login.result(10)
        sale = Background(c.sale, "4711", 100, "PLN")
        req = conn.expect("sale")
        abort = Background(c.abort, "4711")  # a write while the reader thread reads
        ab = conn.expect("abort")
        for i in range(20):
            conn.send(status(req["id"], "4711", text=f"s{i}"))
        conn.send(status(ab["id"], "4711", "aborting"))
        conn.send(result(req["id"], "4711", "cancelled"))
        self.assertEqual(abort.result(10)["stage"], "aborting")
        self.assertEqual(sale.result(10)["outcome"], "cancelled")

    def test_a_server_that_wants_a_client_certificate_refuses_a_client_without(self):
        c = Client("127.0.0.1", self.server.port, tls=eftd_pos.tls_context(self.pki["ca"]))
        self.addCleanup(c.close)
        with self.assertRaises(ConnectionLost):
            c.login("T01")

    def test_the_server_certificate_is_checked(self):
        other = make_pki(tempfile.mkdtemp(dir=self.tmp.name), ())
        tls = eftd_pos.tls_context(other["ca"], self.pki["till-T01.crt"], self.pki["till-T01.key"])
        with self.assertRaises(ConnectionLost) as cm:
            Client("127.0.0.1", self.server.port, tls=tls).login("T01")
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
