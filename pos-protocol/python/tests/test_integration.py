"""The Python client against a REAL eftd: eft-acquirer-sim, eftd (fresh journal) and a PIN pad
(`eftpad virtual`, or a scripted pad that holds the sale at the card step) as child processes
on free ports. Covers the requests PROTOCOL.md marks as served.
"""

import json
import subprocess
import sys
import threading
import time
import unittest

from harness import HERE, Background, EftdTest, card_pan, unique_order
from eftd_pos import ConnectionLost, OrderUnknown, ServerError


class SessionTest(EftdTest):
    def test_login_heartbeat_and_status_of_an_unknown_order(self):
        self.install("session")
        c = self.client()
        ok = c.login("T01", "42")
        self.assertEqual(ok["type"], "login_ok")
        self.assertEqual(ok["server"], "eftd-demo")
        self.assertEqual(ok["version"], 1)
        self.assertRegex(ok["business_date"], r"^\d{4}-\d{2}-\d{2}$")
        for cap in ("sale", "status_query", "heartbeat"):
            self.assertIn(cap, ok["capabilities"])
        self.assertEqual(c.business_date, ok["business_date"])
        hb = c.ping()
        self.assertEqual(hb["type"], "heartbeat_ack")
        st = c.status(unique_order("U"))
        self.assertEqual(st["state"], "unknown")
        self.assertNotIn("last_result", st)
        with self.assertRaises(OrderUnknown):
            c.recover(unique_order("U"), wait=5)

    def test_login_refusals(self):
        self.install("refusals")
        c = self.client()
        c.connect()
        with self.assertRaises(ServerError) as cm:
            c.status("1")
        self.assertEqual(cm.exception.code, "not_logged_in")
        self.assertEqual(c.ping()["type"], "heartbeat_ack")  # allowed before login
        with self.assertRaises(ServerError) as cm:
            c.login("T99")
        self.assertEqual(cm.exception.code, "unknown_till")
        c.login("T01")
        with self.assertRaises(ServerError) as cm:
            c.login("T01")
        self.assertEqual(cm.exception.code, "already_logged_in")


class SaleTest(EftdTest):
    def test_approved_sale_with_receipt(self):
        self.install("approved", card="visa-approve.toml")
        c = self.logged_in()
        order = unique_order("A")
        statuses = []
        r = c.sale(order, 12345, "PLN", on_status=statuses.append)
        self.assertEqual(r["type"], "result")
        self.assertEqual(r["outcome"], "approved")
        self.assertEqual(r["order_no"], order)
        self.assertEqual((r["amount"], r["approved_amount"], r["currency"]), (12345, 12345, "PLN"))
        self.assertIsInstance(r["amount"], int)
        self.assertEqual(r["business_date"], c.business_date)
        self.assertTrue(r["auth_code"])
        self.assertEqual(r["scheme"], "visa")
        pan = card_pan("visa-approve.toml")
        self.assertTrue(r["masked_pan"].endswith(pan[-4:]))
        self.assertIn("*", r["masked_pan"])
        for copy in ("merchant", "customer"):
            lines = r["receipt"][copy]
            self.assertTrue(lines, copy)
            self.assertTrue(any(order in line for line in lines), f"{copy} receipt names the order")
            self.assertTrue(any("123.45" in line for line in lines), f"{copy} receipt shows the amount")
        self.assertTrue(statuses, "no status line while the sale ran")
        self.assertTrue(all(s["order_no"] == order for s in statuses))
        self.assertNoClearPan([r, statuses])
        st = c.status(order)
        self.assertEqual(st["state"], "approved")
        self.assertEqual(st["last_result"]["auth_code"], r["auth_code"])

    def test_declined_sale_is_motivated_and_quotes_the_order(self):
        self.install("declined", card="visa-decline.toml")
        c = self.logged_in()
        order = unique_order("D")
        r = c.sale(order, 2000, "PLN")
        self.assertEqual(r["outcome"], "declined")
        self.assertEqual(r["order_no"], order)
        self.assertTrue(r["reason"]["code"])
        self.assertIn(order, r["reason"]["cashier_text"])
        self.assertTrue(r["reason"].get("customer_text"))
        self.assertEqual(r.get("approved_amount", 0), 0)
        self.assertNoClearPan([r], "visa-decline.toml")
        self.assertEqual(c.status(order)["state"], "declined")

    def test_repeating_the_same_sale_returns_the_stored_result(self):
        self.install("repeat", card="visa-approve.toml")
        c = self.logged_in()
        order = unique_order("R")
        first = c.sale(order, 700, "PLN")
        self.assertEqual(first["outcome"], "approved")
        statuses = []
        again = c.sale(order, 700, "PLN", on_status=statuses.append)
        self.assertNotEqual(again["id"], first["id"])  # carries the new request's id
        for key in ("outcome", "auth_code", "stan", "rrn", "amount", "business_date", "receipt"):
            self.assertEqual(again[key], first[key], key)
        self.assertEqual(statuses, [], "a stored result comes at once, without running again")
        # After a reconnect too (the usual case: the POS lost the first answer).
        c2 = self.logged_in()
        self.assertEqual(c2.sale(order, 700, "PLN", business_date=first["business_date"])["auth_code"],
                         first["auth_code"])

    def test_invalid_amount_and_currency_are_refused_before_the_start(self):
        self.install("invalid", card="visa-approve.toml")
        c = self.logged_in()
        for amount, currency, code in ((0, "PLN", "invalid_amount"), (100, "XXZ", "invalid_currency"),
                                       (100, "PLN", "invalid_amount")):
            with self.subTest(code=code, amount=amount):
                with self.assertRaises(ServerError) as cm:
                    c.sale(unique_order("I"), amount, currency, cashback=200 if amount == 100 and
                           currency == "PLN" else 0)
                self.assertEqual(cm.exception.code, code)


class HeldSaleTest(EftdTest):
    """A scripted pad holds the sale at the card step until the test presents the card."""

    def login_when_free(self, timeout: float = 10.0):
        """Logs T01 in on a new connection. Until eftd has seen the old connection close, the
        till is still held by it (till_in_use): ask again until the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.client()
            try:
                c.login("T01", "42")
                return c
            except ServerError as e:
                if e.code != "till_in_use" or time.monotonic() > deadline:
                    raise
            c.close()
            threading.Event().wait(0.05)

    def test_status_query_after_a_disconnect_mid_sale(self):
        self.install("posdrop", scripted=True)
        c = self.logged_in()
        order = unique_order("X")
        sale = Background(c.sale, order, 900, "PLN")
        self.assertTrue(self.pad.wait_read_card(), "eftd never asked the pad for a card")
        c.close()  # the POS loses its connection while the customer holds the card
        with self.assertRaises(ConnectionLost):
            sale.result(10)
        # Recovery on a new connection: the order is still running on the server.
        c2 = self.login_when_free()
        self.assertEqual(c2.status(order)["state"], "in_progress")
        c2.close()
        self.pad.present_card()
        # recover() = reconnect, login, status_query, asking again while in_progress.
        r = c.recover(order, wait=60, poll_interval=0.5)
        self.assertEqual(r["state"], "approved")
        self.assertEqual(r["outcome"], "approved")
        self.assertEqual(r["order_no"], order)
        self.assertTrue(r["receipt"]["customer"])
        self.assertNoClearPan([r])
        self.assertTrue(c.connected)  # the client is logged in again and usable
        self.assertEqual(c.ping()["type"], "heartbeat_ack")

    def test_one_transaction_per_till(self):
        self.install("busy", scripted=True)
        c = self.logged_in()
        order = unique_order("B")
        sale = Background(c.sale, order, 500, "PLN")
        self.assertTrue(self.pad.wait_read_card())
        with self.assertRaises(ServerError) as cm:
            c.sale(order + "x", 500, "PLN")
        self.assertEqual(cm.exception.code, "busy")
        with self.assertRaises(ServerError) as cm:
            c.sale(order, 500, "PLN")
        self.assertEqual((cm.exception.code, cm.exception.order_no), ("in_progress", order))
        with self.assertRaises(ServerError) as cm:
            c.logout()
        self.assertEqual(cm.exception.code, "busy")
        # status_query and heartbeat are allowed while the transaction runs.
        self.assertEqual(c.status(order)["state"], "in_progress")
        self.assertEqual(c.ping()["type"], "heartbeat_ack")
        # Another connection cannot take the till over while its transaction runs.
        other = self.client()
        with self.assertRaises(ServerError) as cm:
            other.login("T01")
        self.assertEqual(cm.exception.code, "till_in_use")
        self.pad.present_card()
        self.assertEqual(sale.result(60)["outcome"], "approved")
        # The till is free again.
        self.assertEqual(c.status(order)["state"], "approved")

    def test_a_pad_error_ends_the_sale_with_a_motivated_failure(self):
        self.install("padfail", scripted=True)
        c = self.logged_in()
        order = unique_order("F")
        sale = Background(c.sale, order, 300, "PLN")
        self.assertTrue(self.pad.wait_read_card())
        self.pad.fail_read(3)  # no_card
        r = sale.result(60)
        self.assertNotEqual(r["outcome"], "approved")
        self.assertIn(order, r["reason"]["cashier_text"])


class CliTest(EftdTest):
    def run_cli(self, *args: str) -> tuple[int, list[str], str]:
        p = subprocess.run([sys.executable, str(HERE.parent / "eftd_pos.py"), "--port", str(self.inst.pos_port),
                            "--till", "T01", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
        return p.returncode, p.stdout.splitlines(), p.stderr

    def test_sale_and_status_from_the_command_line(self):
        self.install("cli", card="visa-approve.toml")
        order = unique_order("C")
        rc, out, err = self.run_cli("sale", "--order", order, "--amount", "12500", "--currency", "PLN")
        self.assertEqual(rc, 0, err)
        r = json.loads(out[-1])
        self.assertEqual((r["type"], r["outcome"], r["amount"]), ("result", "approved", 12500))
        self.assertFalse(card_pan("visa-approve.toml") in "\n".join(out) + err, "clear PAN in CLI output")
        rc, out, _ = self.run_cli("status", "--order", order)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out[-1])["state"], "approved")
        rc, out, _ = self.run_cli("sale", "--order", order, "--amount", "12500", "--currency", "XXZ")
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out[-1])["type"], "error")


if __name__ == "__main__":
    unittest.main()
