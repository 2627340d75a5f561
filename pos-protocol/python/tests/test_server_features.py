"""Server features through the Python client against a real eftd, like test_integration:
totals, refund, cancel, balance inquiry, abort, prompts, TLS with till certificates,
connection limits, logout_ok and duplicate_order (PROTOCOL.md is the only reference used).
"""

import socket
import tempfile
import time
import unittest

from harness import Background, EftdTest, Installation, make_pki, unique_order
import eftd_pos
from eftd_pos import Client, ConnectionLost, PosError, ServerError


def code_of(e: PosError) -> str:
    """The server's code, whether it came as a reply or as the reason for a closed connection."""
    if isinstance(e, ConnectionLost) and e.server_error is not None:
        return e.server_error.code
    return e.code


class SpecConformanceTest(EftdTest):
    def test_logout_is_answered_before_the_server_closes(self):
        self.install("logout")
        c = self.logged_in()
        ok = c.logout()
        self.assertEqual(ok["type"], "logout_ok")
        self.assertFalse(c.connected)
        with self.assertRaises(ConnectionLost):
            c.ping()

    def test_the_same_order_with_other_data_is_duplicate_order(self):
        self.install("duplicate", card="visa-approve.toml")
        c = self.logged_in()
        order = unique_order("Q")
        self.assertEqual(c.sale(order, 700, "PLN")["outcome"], "approved")
        with self.assertRaises(ServerError) as cm:
            c.sale(order, 800, "PLN")
        self.assertEqual(cm.exception.code, "duplicate_order")
        self.assertEqual(cm.exception.order_no, order)

    def test_status_lines_carry_the_transaction_request_id(self):
        self.install("statusid", card="visa-approve.toml")
        c = self.logged_in()
        seen = []
        r = c.sale(unique_order("S"), 100, "PLN", on_status=seen.append)
        self.assertTrue(seen)
        self.assertEqual({s.get("id") for s in seen}, {r["id"]})

    def test_preauth_incremental_and_completion(self):
        self.install("preauth", card="visa-approve.toml")
        c = self.logged_in()
        for cap in ("preauth", "completion", "incremental"):
            self.assertIn(cap, c.server_capabilities)
        hold = unique_order("H")
        self.assertEqual(c.preauth(hold, 10000, "PLN")["outcome"], "approved")
        self.assertEqual(c.incremental(unique_order("I"), hold, 500, "PLN")["outcome"], "approved")
        over = c.completion(unique_order("X"), hold, 10501, "PLN")
        self.assertEqual(over["outcome"], "declined")
        self.assertEqual(over["reason"]["code"], "completion.exceeds_authorised")
        done = c.completion(unique_order("C"), hold, 10500, "PLN")
        self.assertEqual(done["outcome"], "approved")
        self.assertEqual(done["approved_amount"], 10500)
        with self.assertRaises(ServerError) as cm:
            c.completion(unique_order("Z"), "", 100, "PLN")
        self.assertEqual(cm.exception.code, "pos.bad_field")


class TotalsRefundCancelTest(EftdTest):
    def test_totals_after_sales_and_a_refund(self):
        self.install("totals", scripted=True)
        c = self.logged_in()
        self.assertIn("totals", c.server_capabilities)

        def sale(amount, card):
            run = Background(c.sale, unique_order("T"), amount, "PLN")
            self.assertTrue(self.pad.wait_read_card())
            self.pad.present_card(card)
            return run.result(60)

        a = sale(12500, "visa-approve.toml")
        self.assertEqual(a["outcome"], "approved")
        self.assertEqual(sale(300, "visa-decline.toml")["outcome"], "declined")
        ref = Background(c.refund, unique_order("RF"), 500, "PLN", a["order_no"])
        self.assertTrue(self.pad.wait_read_card())
        self.pad.present_card("visa-approve.toml")
        self.assertEqual(ref.result(60)["outcome"], "approved")
        t = c.totals()
        self.assertEqual(t["till_id"], "T01")
        self.assertEqual(t["business_date"], c.business_date)
        lines = [(x["kind"], x["outcome"], x["currency"], x["count"], x["amount"]) for x in t["lines"]]
        self.assertEqual(lines, sorted(lines))
        self.assertIn(("sale", "approved", "PLN", 1, 12500), lines)
        self.assertIn(("sale", "declined", "PLN", 1, 300), lines)
        self.assertIn(("refund", "approved", "PLN", 1, 500), lines)
        self.assertEqual(t["net"], {"PLN": 12000})
        self.assertEqual(c.totals(c.business_date)["net"], {"PLN": 12000})

    def test_refund_with_and_without_the_original_order(self):
        self.install("refund", card="visa-approve.toml")
        c = self.logged_in()
        sale = c.sale(unique_order("S"), 1000, "PLN")
        r1 = c.refund(unique_order("RF"), 400, "PLN", sale["order_no"], original_business_date=sale["business_date"])
        self.assertEqual(r1["outcome"], "approved")
        self.assertTrue(any("REFUND" in line for line in r1["receipt"]["customer"]))
        r2 = c.refund(unique_order("RF"), 100, "PLN")
        self.assertEqual(r2["outcome"], "approved")
        self.assertNoClearPan([r1, r2])

    def test_cancel_reverses_an_approved_order(self):
        self.install("cancel", card="visa-approve.toml")
        c = self.logged_in()
        order = unique_order("K")
        self.assertEqual(c.sale(order, 2500, "PLN")["outcome"], "approved")
        r = c.cancel(order)
        self.assertEqual(r["outcome"], "approved")
        self.assertEqual(r["order_no"], order)
        st = c.status(order)
        self.assertEqual(st["state"], "reversed")
        # A repeated cancel (a POS retry) is idempotent like a repeated sale: the stored answer,
        # nothing reversed twice.
        again = c.cancel(order, c.business_date)
        self.assertEqual((again["outcome"], again["order_no"]), ("approved", order))
        self.assertEqual(c.status(order)["state"], "reversed")
        # Nothing to cancel: a declined result with a reason quoting the order, not an error.
        none = unique_order("none")
        nothing = c.cancel(none)
        self.assertEqual(nothing["outcome"], "declined")
        self.assertTrue(nothing["reason"]["code"])
        self.assertIn(none, nothing["reason"]["cashier_text"])

    def test_balance_inquiry(self):
        self.install("balance", card="visa-approve.toml")
        c = self.logged_in()
        r = c.balance_inquiry(unique_order("BI"))
        self.assertEqual(r["outcome"], "approved")
        self.assertIsInstance(r["balance"], int)
        self.assertTrue(r["currency"])


class AbortTest(EftdTest):
    def test_abort_while_the_customer_holds_the_card(self):
        self.install("abort", scripted=True)
        c = self.logged_in()
        order = unique_order("AB")
        sale = Background(c.sale, order, 800, "PLN")
        self.assertTrue(self.pad.wait_read_card())
        ack = c.abort(order)  # from this thread while the sale waits in another
        self.assertEqual((ack["type"], ack["stage"], ack["order_no"]), ("status", "aborting", order))
        r = sale.result(60)
        self.assertEqual((r["outcome"], r["reason"]["code"]), ("cancelled", "pos.aborted"))
        self.assertIn(order, r["reason"]["cashier_text"])
        self.assertTrue(self.pad.wait_cancel(5), "the pad was not told to stop reading")
        self.assertEqual(c.status(order)["state"], "cancelled")

    def test_abort_of_an_order_that_is_not_running(self):
        self.install("abort-none")
        c = self.logged_in()
        with self.assertRaises(ServerError) as cm:
            c.abort(unique_order("none"))
        self.assertEqual(cm.exception.code, "unknown_order")


PROMPTS = """
[[prompts]]
id = "receipt_kind"
stage = "before_card"
types = ["sale"]
kind = "menu"
text = "Receipt for the customer?"
options = ["paper", "email", "none"]
default = "paper"
min_amount = 10000

[[prompts]]
id = "customer_ok"
stage = "before_card"
kind = "yes_no"
text = "Is the customer at the till?"
default = "yes"
timeout_ms = 1500
cancel_on = ["no"]
"""


class PromptTest(EftdTest):
    def setUp(self):
        self.install_prompts()

    def install_prompts(self):
        self.inst = Installation("prompts")
        self.addCleanup(self.inst.close)
        self.inst.start_eftd(config=self.inst.config_with(PROMPTS))
        self.inst.start_pad("visa-approve.toml")

    def generic_answer(self, answers):
        """Answers any prompt from its data alone (no known prompt ids), recording it."""
        seen = []

        def on_prompt(p):
            seen.append(p)
            if p["kind"] == "menu":
                return answers.get("menu", p["options"][-1])
            if p["kind"] == "yes_no":
                return answers.get("yes_no", "yes")
            if p["kind"] == "numeric":
                return "1"
            return "ok"

        return seen, on_prompt

    def test_prompts_are_asked_and_answered(self):
        c = self.logged_in()
        seen, on_prompt = self.generic_answer({})
        order = unique_order("P")
        r = c.sale(order, 12000, "PLN", on_prompt=on_prompt)
        self.assertEqual(r["outcome"], "approved")
        kinds = sorted(p["kind"] for p in seen)
        self.assertEqual(kinds, ["menu", "yes_no"])
        for p in seen:
            self.assertEqual(p["order_no"], order)
            self.assertTrue(p["prompt_id"] and p["text"])
        menu = next(p for p in seen if p["kind"] == "menu")
        self.assertEqual(menu["options"], ["paper", "email", "none"])
        self.assertEqual(menu["default"], "paper")

    def test_an_answer_in_cancel_on_cancels_the_sale(self):
        c = self.logged_in()
        seen, on_prompt = self.generic_answer({"yes_no": "no"})
        order = unique_order("P")
        r = c.sale(order, 500, "PLN", on_prompt=on_prompt)
        self.assertEqual([p["kind"] for p in seen], ["yes_no"])  # below min_amount: no menu
        self.assertEqual(r["outcome"], "cancelled")
        self.assertIn(order, r["reason"]["cashier_text"])

    def test_an_invalid_answer_is_refused_and_the_prompt_stays_open(self):
        c = self.logged_in()
        calls = []

        def on_prompt(p):
            calls.append(p)
            if p["kind"] == "menu" and "rejected_value" not in p:
                return "carrier pigeon"
            return p["options"][0] if p["kind"] == "menu" else "yes"

        r = c.sale(unique_order("P"), 15000, "PLN", on_prompt=on_prompt)
        self.assertEqual(r["outcome"], "approved")
        rejected = [p for p in calls if "rejected_value" in p]
        self.assertEqual(len(rejected), 1)
        self.assertEqual(rejected[0]["rejected_value"], "carrier pigeon")

    def test_no_answer_takes_the_default_after_the_timeout(self):
        c = self.logged_in()
        seen = []
        started = time.monotonic()
        r = c.sale(unique_order("P"), 500, "PLN", on_prompt=lambda p: seen.append(p))  # returns None
        self.assertEqual(len(seen), 1)
        self.assertEqual(r["outcome"], "approved")  # default "yes"
        self.assertGreater(time.monotonic() - started, 1.0)

    def test_a_pos_without_the_prompt_capability_gets_no_prompts(self):
        c = self.client()
        c.login("T01", capabilities=())
        seen = []
        r = c.sale(unique_order("P"), 12000, "PLN", on_prompt=seen.append)
        self.assertEqual(seen, [])
        self.assertEqual(r["outcome"], "approved")


# openssl is installed by tools/lib.sh; a machine without it must fail here, not skip.
class TlsTest(EftdTest):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.pki = make_pki(self.tmp.name, ("T01", "T02"))
        self.install("tls", extra_toml=f"""
[listen.pos.tls]
cert_file = "{self.pki['server.crt']}"
key_file = "{self.pki['server.key']}"
client_ca_file = "{self.pki['ca']}"
""")

    def tls_client(self, till_cert: str = None) -> Client:
        tls = eftd_pos.tls_context(self.pki["ca"], self.pki.get(f"till-{till_cert}.crt"),
                                   self.pki.get(f"till-{till_cert}.key"))
        return self.client(tls=tls)

    def test_a_till_logs_in_with_its_own_certificate(self):
        c = self.tls_client("T01")
        self.assertEqual(c.login("T01")["type"], "login_ok")
        self.assertEqual(c.ping()["type"], "heartbeat_ack")
        self.assertEqual(c.status(unique_order("U"))["state"], "unknown")

    def test_another_tills_certificate_is_not_authorized(self):
        c = self.tls_client("T01")
        with self.assertRaises(ServerError) as cm:
            c.login("T02")
        self.assertEqual(cm.exception.code, "till_not_authorized")

    def test_no_client_certificate_no_session(self):
        c = self.tls_client(None)
        with self.assertRaises(ConnectionLost):
            c.login("T01")
            c.ping()

    def test_plaintext_is_refused_on_a_tls_port(self):
        c = self.client(reply_timeout=3)
        with self.assertRaises((ConnectionLost, eftd_pos.Timeout)):
            c.login("T01")


class ConnectionLimitTest(EftdTest):
    def wait_closed(self, c: Client, timeout: float = 10.0) -> None:
        c._conn._reader.join(timeout)  # the reader thread ends with the connection
        self.assertFalse(c.connected, "the server kept the connection open")

    def test_no_login_in_time_closes_the_connection(self):
        self.install("logintimeout", listen_pos="login_timeout_ms = 300")
        c = self.client()
        c.connect()
        self.wait_closed(c)
        with self.assertRaises(ConnectionLost) as cm:
            c.ping()
        self.assertEqual(code_of(cm.exception), "login_timeout")

    def test_a_line_that_never_ends_closes_the_connection(self):
        self.install("frametimeout", listen_pos="frame_timeout_ms = 300")
        with socket.create_connection(("127.0.0.1", self.inst.pos_port), timeout=10) as s:
            s.sendall(b'{"type":"heartbeat","v":1,')  # and nothing more: slowloris
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        line = eftd_pos.decode_line(data.split(b"\n")[0])
        self.assertEqual((line["type"], line["code"]), ("error", "frame_timeout"))

    def test_too_many_connections_are_refused(self):
        self.install("limits", listen_pos="max_per_address = 1")
        first = self.logged_in()
        second = self.client()
        with self.assertRaises((ServerError, ConnectionLost)) as cm:
            second.login("T02")
        self.assertEqual(code_of(cm.exception), "too_many_connections")
        self.assertEqual(first.ping()["type"], "heartbeat_ack")


if __name__ == "__main__":
    unittest.main()
