"""Wire format: encoding against the golden lines, decoding rules, line framing. No sockets."""

import json
import unittest

import harness  # noqa: F401 - puts eftd_pos on the path
import eftd_pos
from eftd_pos import ConnectionLost, DecodeError, LineBuffer, MAX_LINE, decode_line, encode

# Golden lines copied verbatim from tests/pos/golden.hpp (the normative examples; PROTOCOL.md
# shows the same). POS -> server: (type, fields, line).
GOLDEN_REQUESTS = [
    ("login", "1", dict(till_id="T01", operator_id="42", client="kasa/3.1", version=1, capabilities=["prompt"]),
     '{"type":"login","v":1,"id":"1","till_id":"T01","operator_id":"42","client":"kasa/3.1","version":1,'
     '"capabilities":["prompt"]}'),
    ("login", "1", dict(till_id="T01", version=1), '{"type":"login","v":1,"id":"1","till_id":"T01","version":1}'),
    ("logout", "2", {}, '{"type":"logout","v":1,"id":"2"}'),
    ("sale", "3", dict(order_no="4711", amount=12500, currency="PLN", cashback=2000, tip=500),
     '{"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN","cashback":2000,"tip":500}'),
    ("sale", "3", dict(order_no="4711", amount=12500, currency="PLN", cashback=0, tip=0),
     '{"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN"}'),
    ("refund", "4", dict(order_no="4712", amount=500, currency="PLN", original_order_no="4711"),
     '{"type":"refund","v":1,"id":"4","order_no":"4712","amount":500,"currency":"PLN","original_order_no":"4711"}'),
    ("preauth", "5", dict(order_no="H-1", amount=30000, currency="EUR"),
     '{"type":"preauth","v":1,"id":"5","order_no":"H-1","amount":30000,"currency":"EUR"}'),
    ("completion", "6", dict(order_no="H-2", preauth_order_no="H-1", amount=28950, currency="EUR"),
     '{"type":"completion","v":1,"id":"6","order_no":"H-2","preauth_order_no":"H-1","amount":28950,"currency":"EUR"}'),
    ("incremental", "7", dict(order_no="H-3", preauth_order_no="H-1", amount=5000, currency="EUR"),
     '{"type":"incremental","v":1,"id":"7","order_no":"H-3","preauth_order_no":"H-1","amount":5000,"currency":"EUR"}'),
    ("cancel", "8", dict(order_no="4711", business_date="2024-05-02"),
     '{"type":"cancel","v":1,"id":"8","order_no":"4711","business_date":"2024-05-02"}'),
    ("balance_inquiry", "9", dict(order_no="B-1"), '{"type":"balance_inquiry","v":1,"id":"9","order_no":"B-1"}'),
    ("status_query", "10", dict(order_no="4711", business_date=""),
     '{"type":"status_query","v":1,"id":"10","order_no":"4711"}'),
    ("status_query", "10", dict(order_no="4711", business_date="2024-05-01"),
     '{"type":"status_query","v":1,"id":"10","order_no":"4711","business_date":"2024-05-01"}'),
    ("answer", "11", dict(prompt_id="p1", value="yes"), '{"type":"answer","v":1,"id":"11","prompt_id":"p1","value":"yes"}'),
    ("abort", "12", dict(order_no="4711"), '{"type":"abort","v":1,"id":"12","order_no":"4711"}'),
    ("heartbeat", "13", {}, '{"type":"heartbeat","v":1,"id":"13"}'),
    ("totals", "14", dict(business_date="2024-05-02"), '{"type":"totals","v":1,"id":"14","business_date":"2024-05-02"}'),
    ("sale", "3", dict(order_no="4711", amount=12500, currency="PLN", business_date="2024-05-02"),
     '{"type":"sale","v":1,"id":"3","order_no":"4711","amount":12500,"currency":"PLN","business_date":"2024-05-02"}'),
    ("refund", "4", dict(order_no="4712", amount=500, currency="PLN", original_order_no="4711",
                         original_business_date="2024-05-01", business_date=""),
     '{"type":"refund","v":1,"id":"4","order_no":"4712","amount":500,"currency":"PLN","original_order_no":"4711",'
     '"original_business_date":"2024-05-01"}'),
]

# Server -> POS golden lines (tests/pos/golden.hpp).
GOLDEN_REPLIES = {
    "login_ok": '{"type":"login_ok","v":1,"id":"1","server":"eftd-a","business_date":"2024-05-02","version":1,'
                '"capabilities":["sale","status_query"]}',
    "status": '{"type":"status","v":1,"id":"3","order_no":"4711","stage":"card","text":"Insert or swipe card"}',
    "prompt": '{"type":"prompt","v":1,"id":"3","prompt_id":"p1","order_no":"4711","kind":"yes_no",'
              '"text":"Signature OK?","options":["yes","no"],"timeout_ms":30000,"default":"no"}',
    "result_approved": '{"type":"result","v":1,"id":"3","order_no":"4711","outcome":"approved",'
                       '"business_date":"2024-05-02","amount":12500,"approved_amount":12500,"currency":"PLN",'
                       '"auth_code":"A1B2C3","masked_pan":"************0119","scheme":"visa","entry_mode":"chip",'
                       '"terminal_id":"T0000001","stan":"000123","rrn":"412300000123","emv":{"AID":"A0000000031010",'
                       '"ARC":"00","TSI":"E800","TVR":"0000000000"},"receipt":{"merchant":["SHOP 1",'
                       '"SALE 125.00 PLN"],"customer":["SHOP 1","SALE 125.00 PLN","APPROVED"]}}',
    "result_declined": '{"type":"result","v":1,"id":"4","order_no":"4712","outcome":"declined","amount":500,'
                       '"currency":"PLN","reason":{"code":"issuer.insufficient_funds",'
                       '"cashier_text":"Declined by issuer: insufficient funds","customer_text":"Declined"}}',
    "order_status": '{"type":"order_status","v":1,"id":"10","order_no":"4712","state":"declined",'
                    '"business_date":"2024-05-02","last_result":{"id":"4","order_no":"4712","outcome":"declined",'
                    '"amount":500,"currency":"PLN","reason":{"code":"issuer.insufficient_funds",'
                    '"cashier_text":"Declined by issuer: insufficient funds","customer_text":"Declined"}}}',
    "order_status_unknown": '{"type":"order_status","v":1,"id":"10","order_no":"9999","state":"unknown"}',
    "error": '{"type":"error","v":1,"id":"3","code":"busy","message":"another transaction is running on this till",'
             '"order_no":"4711"}',
    "error_not_active": '{"type":"error","v":1,"code":"not_active","message":"standby server",'
                        '"active_server":"10.0.0.2:9100"}',
    "heartbeat_ack": '{"type":"heartbeat_ack","v":1,"id":"13"}',
    "logout_ok": '{"type":"logout_ok","v":1,"id":"2"}',
    "totals_report": '{"type":"totals_report","v":1,"id":"14","till_id":"T01","business_date":"2024-05-02",'
                     '"lines":[{"kind":"refund","outcome":"approved","currency":"PLN","count":1,"amount":500},'
                     '{"kind":"sale","outcome":"approved","currency":"PLN","count":2,"amount":25000},'
                     '{"kind":"sale","outcome":"declined","currency":"PLN","count":1,"amount":500}],'
                     '"net":{"PLN":24500}}',
    "result_balance": '{"type":"result","v":1,"id":"9","order_no":"B-1","outcome":"approved","currency":"PLN",'
                      '"balance":123456}',
}


class EncodeTest(unittest.TestCase):
    def test_every_request_matches_its_golden_line(self):
        for msg_type, rid, fields, line in GOLDEN_REQUESTS:
            with self.subTest(line=line):
                self.assertEqual(encode(msg_type, rid, **fields), line.encode() + b"\n")

    def test_amounts_must_be_integers_in_minor_units(self):
        for bad in (125.0, "12500", True, None):
            with self.subTest(amount=bad):
                with self.assertRaises((TypeError, ValueError)):
                    encode("sale", "1", order_no="1", amount=bad, currency="PLN")

    def test_unknown_fields_and_types_are_refused(self):
        with self.assertRaises(ValueError):
            encode("sale", "1", order_no="1", amount=1, currency="PLN", colour="red")
        with self.assertRaises(ValueError):
            encode("result", "1")
        with self.assertRaises(ValueError):
            encode("status_query", "1")  # order_no is required

    def test_utf8_text_is_sent_as_utf8(self):
        line = encode("login", "1", till_id="T01", operator_id="Zoë", version=1)
        self.assertIn("Zoë".encode("utf-8"), line)
        self.assertEqual(json.loads(line)["operator_id"], "Zoë")

    def test_a_line_over_the_limit_is_never_sent(self):
        with self.assertRaises(ValueError):
            encode("status_query", "1", order_no="x" * MAX_LINE)


class DecodeTest(unittest.TestCase):
    def test_every_golden_reply_decodes(self):
        for name, line in GOLDEN_REPLIES.items():
            with self.subTest(name=name):
                msg = decode_line(line.encode())
                self.assertEqual(msg, json.loads(line))

    def test_decoded_values(self):
        r = decode_line(GOLDEN_REPLIES["result_approved"].encode())
        self.assertIsInstance(r["amount"], int)
        self.assertEqual(r["receipt"]["customer"][-1], "APPROVED")
        st = decode_line(GOLDEN_REPLIES["order_status"].encode())
        self.assertEqual(st["last_result"]["reason"]["code"], "issuer.insufficient_funds")
        t = decode_line(GOLDEN_REPLIES["totals_report"].encode())
        self.assertEqual(t["net"], {"PLN": 24500})
        self.assertEqual(decode_line(GOLDEN_REPLIES["result_balance"].encode())["balance"], 123456)

    def test_crlf_whitespace_key_order_and_unknown_fields_are_accepted(self):
        line = b'{ "id" : "13", "future" : {"x": [1, 2]}, "v": 1, "type": "heartbeat_ack" }\r'
        self.assertEqual(decode_line(line), {"id": "13", "future": {"x": [1, 2]}, "v": 1, "type": "heartbeat_ack"})

    def test_empty_lines_are_not_messages(self):
        for line in (b"", b"\r", b"  ", b" \r"):
            self.assertIsNone(decode_line(line))

    def test_null_in_an_optional_field_means_absent(self):
        msg = decode_line(b'{"type":"result","v":1,"id":"3","order_no":"4711","outcome":"failed","reason":null,'
                          b'"amount":null}')
        self.assertNotIn("reason", msg)
        self.assertNotIn("amount", msg)

    def assertDecodeError(self, line, code, field=None):
        with self.assertRaises(DecodeError) as cm:
            decode_line(line)
        self.assertEqual(cm.exception.code, code)
        if field is not None:
            self.assertEqual(cm.exception.field, field)

    def test_errors(self):
        self.assertDecodeError(b"not json", "pos.bad_json")
        self.assertDecodeError(b"[1,2]", "pos.bad_json")
        self.assertDecodeError(b'{"type":"status","v":1,"x":NaN}', "pos.bad_json")
        self.assertDecodeError(b'\xff{"type":"status","v":1}', "pos.bad_json")
        self.assertDecodeError(b'{"type":"status"}', "pos.missing_field", "v")
        self.assertDecodeError(b'{"type":"status","v":2}', "pos.unsupported_version")
        self.assertDecodeError(b'{"type":"status","v":"1"}', "pos.bad_field", "v")
        self.assertDecodeError(b'{"type":"status","v":1.0}', "pos.bad_field", "v")
        self.assertDecodeError(b'{"v":1}', "pos.missing_field", "type")
        self.assertDecodeError(b'{"type":"surprise","v":1}', "pos.unknown_type")
        self.assertDecodeError(b'{"type":"sale","v":1,"id":"1"}', "pos.unexpected")
        self.assertDecodeError(b'{"type":"result","v":1,"id":"3","order_no":"1"}', "pos.missing_field", "outcome")
        self.assertDecodeError(b'{"type":"result","v":1,"id":"3","order_no":"1","outcome":"approved",'
                               b'"amount":125.0}', "pos.bad_field", "amount")
        self.assertDecodeError(b'{"type":"result","v":1,"id":"3","order_no":"1","outcome":"declined",'
                               b'"reason":{"cashier_text":"x"}}', "pos.missing_field", "reason.code")
        self.assertDecodeError(b'{"type":"order_status","v":1,"id":"1","order_no":"1","state":"declined",'
                               b'"last_result":{"order_no":"1","outcome":"declined","reason":{"code":5}}}',
                               "pos.bad_field", "last_result.reason.code")
        self.assertDecodeError(b'{"type":"heartbeat_ack","v":1,"id":null}', "pos.bad_field", "id")

    def test_error_messages_name_the_field_never_the_value(self):
        with self.assertRaises(DecodeError) as cm:
            decode_line(b'{"type":"result","v":1,"id":"3","order_no":"1","outcome":"approved","masked_pan":4761739}')
        self.assertIn("masked_pan", str(cm.exception))
        self.assertNotIn("4761739", str(cm.exception))


class LineBufferTest(unittest.TestCase):
    def test_lines_split_across_chunks(self):
        b = LineBuffer()
        self.assertEqual(b.feed(b'{"a"'), [])
        self.assertEqual(b.feed(b':1}\n{"b":2}\r\n\n{"c"'), [b'{"a":1}', b'{"b":2}\r', b""])
        self.assertEqual(b.feed(b":3}\n"), [b'{"c":3}'])
        self.assertEqual(b.pending(), 0)

    def test_a_line_of_exactly_the_limit_is_accepted(self):
        b = LineBuffer()
        self.assertEqual(b.feed(b"x" * MAX_LINE), [])
        self.assertEqual(b.feed(b"\nok\n"), [b"x" * MAX_LINE, b"ok"])

    def test_a_longer_line_is_refused(self):
        b = LineBuffer()
        with self.assertRaises(ConnectionLost) as cm:
            b.feed(b"x" * (MAX_LINE + 1) + b"\n")
        self.assertEqual(cm.exception.code, "pos.frame_too_large")

    def test_too_many_bytes_without_a_newline_are_refused_before_the_end(self):
        b = LineBuffer()
        b.feed(b"x" * MAX_LINE)
        with self.assertRaises(ConnectionLost) as cm:
            b.feed(b"y")
        self.assertEqual(cm.exception.code, "pos.frame_too_large")

    def test_small_limit(self):
        b = LineBuffer(limit=4)
        self.assertEqual(b.feed(b"abcd\n"), [b"abcd"])
        with self.assertRaises(ConnectionLost):
            b.feed(b"ab\nabcde\n")


class PromptRenderingTest(unittest.TestCase):
    """console_prompt renders any prompt from its data alone."""

    def render(self, prompt, typed):
        import io
        out = io.StringIO()
        value = eftd_pos.console_prompt(prompt, read=lambda _: typed, out=out)
        return value, out.getvalue()

    def test_menu_by_number_or_value_and_default_on_empty(self):
        p = {"type": "prompt", "prompt_id": "tip", "order_no": "1", "kind": "menu", "text": "Tip?",
             "options": ["0%", "5%", "10%"], "default": "0%", "timeout_ms": 20000}
        self.assertEqual(self.render(p, "2")[0], "5%")
        self.assertEqual(self.render(p, "10%")[0], "10%")
        value, shown = self.render(p, "")
        self.assertEqual(value, "0%")
        self.assertIn("3) 10%", shown)
        self.assertIn("20 s", shown)

    def test_yes_no_numeric_text(self):
        self.assertEqual(self.render({"prompt_id": "a", "order_no": "1", "kind": "yes_no", "text": "OK?"}, "y")[0],
                         "yes")
        self.assertEqual(self.render({"prompt_id": "b", "order_no": "1", "kind": "numeric", "text": "PIN?"}, "42")[0],
                         "42")
        self.assertIsNone(self.render({"prompt_id": "c", "order_no": "1", "kind": "text", "text": "Note"}, "")[0])


if __name__ == "__main__":
    unittest.main()
