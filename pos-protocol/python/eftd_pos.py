#!/usr/bin/env python3
"""Reference POS client for the eftd POS protocol, version 1 (Python 3.11, standard library only).

Written from pos-protocol/PROTOCOL.md alone: one module an integrator can copy into a
cash-register application. It frames NDJSON, keeps the inactivity timeout of a running
transaction, answers prompts through a callback, and implements the recovery procedure of
PROTOCOL.md section 8 as Client.recover().

    from eftd_pos import Client, ServerError, ConnectionLost, Timeout

    with Client("127.0.0.1", 9100) as pos:
        pos.login("T01", operator_id="42")
        try:
            result = pos.sale("4711", 12500, "PLN", on_status=lambda s: print(s["text"]))
        except (ConnectionLost, Timeout):
            result = pos.recover("4711")     # reconnect, login, status_query
        print(result["outcome"], result.get("receipt"))

Messages are plain dicts exactly as they arrive (unknown fields kept, so a newer server's
additions reach the application); amounts are ints in minor units, never floats.

Errors (all subclasses of PosError, each with a `code`):
  ServerError     the server answered `error` (code, message, order_no, active_server).
  ConnectionLost  "pos.disconnected": connect failed or the connection dropped; also
                  "pos.frame_too_large" when the server sent an oversize line.
  Timeout         "pos.timeout": no message for `inactivity_timeout` seconds during a
                  transaction, or no reply within `reply_timeout` for a direct request.
                  The connection is closed afterwards.
  ProtocolError   "pos.unexpected": the server broke the protocol (e.g. wrong session version).
  OrderUnknown    recover(): the server never saw the order; sending it again with the SAME
                  order number is safe.
  StillInProgress recover(): the order was still running when the wait ended.
After ConnectionLost or Timeout in a transaction its outcome is unknown: call recover().
Never retry under a new order number.

Run as a program for a quick test (prints the final message as one JSON line):
    python3 eftd_pos.py --host 127.0.0.1 --port 9100 --till T01 sale --order 4711 --amount 12500 --currency PLN
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import queue
import socket
import ssl
import sys
import threading
import time
from typing import Any, Callable, Iterable, Optional

__all__ = [
    "PROTOCOL_VERSION", "MAX_LINE", "FINAL_STATES", "Client", "PosError", "ServerError", "ConnectionLost",
    "Timeout", "ProtocolError", "OrderUnknown", "StillInProgress", "DecodeError", "LineBuffer", "encode",
    "decode_line", "tls_context", "console_prompt", "main",
]

PROTOCOL_VERSION = 1
MAX_LINE = 65536  # bytes per line, not counting the "\n" (PROTOCOL.md section 2)
FINAL_STATES = frozenset({"approved", "declined", "cancelled", "failed", "reversed"})
CLIENT_NAME = "eftd_pos.py/1"

_log = logging.getLogger("eftd_pos")
_log.addHandler(logging.NullHandler())  # a library logs only where the application says

# ---------------------------------------------------------------------------------------------
# Errors


class PosError(Exception):
    """Base of every error this module raises on purpose. `code` is machine-readable."""

    code = "pos.error"

    def __init__(self, message: str = "", code: Optional[str] = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class ServerError(PosError):
    """The server answered a request with `error`. Switch on `code`, show `message` to humans."""

    def __init__(self, code: str, message: str = "", order_no: str = "", active_server: str = "",
                 reply: Optional[dict] = None):
        super().__init__(message, code)
        self.order_no = order_no
        self.active_server = active_server
        self.reply = reply if reply is not None else {}

    @classmethod
    def from_reply(cls, msg: dict) -> "ServerError":
        return cls(msg.get("code", ""), msg.get("message", ""), msg.get("order_no", ""),
                   msg.get("active_server", ""), msg)


class ConnectionLost(PosError):
    """The connection could not be opened or is gone. `server_error` is the id-less `error` the
    server sent just before closing, when there was one (too_many_connections, login_timeout...)."""

    code = "pos.disconnected"

    def __init__(self, message: str = "", code: Optional[str] = None,
                 server_error: Optional[ServerError] = None):
        super().__init__(message, code)
        self.server_error = server_error


class Timeout(PosError):
    code = "pos.timeout"


class ProtocolError(PosError):
    code = "pos.unexpected"


class OrderUnknown(PosError):
    """recover(): order_status said `unknown`: resend the request with the same order number."""

    code = "pos.order_unknown"


class StillInProgress(PosError):
    code = "in_progress"


class DecodeError(PosError):
    """A line that is not a valid message (codes of PROTOCOL.md section 6: pos.bad_json, ...).
    `field` names the offending field, never its value."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message, code)
        self.field = field


# ---------------------------------------------------------------------------------------------
# Encoding (POS -> server). Field order and required flags follow PROTOCOL.md section 5.1 and
# the additions (business_date on sale/refund/cancel/totals, original_business_date on refund).

_S, _I, _L = "string", "integer", "array of strings"

REQUEST_FIELDS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "login": (("till_id", _S, True), ("operator_id", _S, False), ("client", _S, False),
              ("version", _I, True), ("capabilities", _L, False)),
    "logout": (),
    "sale": (("order_no", _S, True), ("amount", _I, True), ("currency", _S, True), ("cashback", _I, False),
             ("tip", _I, False), ("business_date", _S, False)),
    "refund": (("order_no", _S, True), ("amount", _I, True), ("currency", _S, True),
               ("original_order_no", _S, False), ("original_business_date", _S, False),
               ("business_date", _S, False)),
    "preauth": (("order_no", _S, True), ("amount", _I, True), ("currency", _S, True)),
    "completion": (("order_no", _S, True), ("preauth_order_no", _S, True), ("amount", _I, True),
                   ("currency", _S, True)),
    "incremental": (("order_no", _S, True), ("preauth_order_no", _S, True), ("amount", _I, True),
                    ("currency", _S, True)),
    "cancel": (("order_no", _S, True), ("business_date", _S, False)),
    "balance_inquiry": (("order_no", _S, True),),
    "status_query": (("order_no", _S, True), ("business_date", _S, False)),
    "answer": (("prompt_id", _S, True), ("value", _S, True)),
    "abort": (("order_no", _S, True),),
    "heartbeat": (),
    "totals": (("business_date", _S, False),),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_kind(name: str, kind: str, value: Any) -> None:
    if kind == _S and not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    if kind == _I and not _is_int(value):
        # Floats are refused on purpose: amounts are integers in minor units (12500 = 125.00).
        raise TypeError(f"{name} must be an int (minor units), not {type(value).__name__}")
    if kind == _L and (isinstance(value, str) or not all(isinstance(x, str) for x in value)):
        raise TypeError(f"{name} must be a list of strings")


def encode(msg_type: str, id: str, **fields: Any) -> bytes:
    """One request as its wire line (compact JSON, keys in protocol order, optional fields that
    have their default value omitted, terminated by "\\n"). Raises TypeError/ValueError for
    arguments that cannot make a valid message, ValueError for a line over MAX_LINE."""
    spec = REQUEST_FIELDS.get(msg_type)
    if spec is None:
        raise ValueError(f"unknown request type {msg_type!r}")
    if not isinstance(id, str):
        raise TypeError("id must be a string")
    known = {name for name, _, _ in spec}
    extra = set(fields) - known
    if extra:
        raise ValueError(f"{msg_type} has no field(s) {', '.join(sorted(extra))}")
    out: dict[str, Any] = {"type": msg_type, "v": PROTOCOL_VERSION, "id": id}
    for name, kind, required in spec:
        value = fields.get(name)
        if value is None:
            if required:
                raise ValueError(f"{msg_type}.{name} is required")
            continue
        _check_kind(f"{msg_type}.{name}", kind, value)
        if not required and value in ("", 0) and kind != _L:
            continue
        if kind == _L:
            value = list(value)
            if not value and not required:
                continue
        out[name] = value
    line = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(line) > MAX_LINE:
        raise ValueError(f"{msg_type} line is {len(line)} bytes, over the {MAX_LINE}-byte limit")
    return line + b"\n"


# ---------------------------------------------------------------------------------------------
# Decoding (server -> POS). A schema per message type: field -> (kind, required). Kinds:
# "s" string, "i" integer, "ls" list of strings, "os" object of strings, "oi" object of
# integers, or a nested schema dict (object), or ("list", schema) for a list of objects.

_REASON = {"code": ("s", True), "cashier_text": ("s", False), "customer_text": ("s", False)}
_RECEIPT = {"merchant": ("ls", False), "customer": ("ls", False)}
_RESULT_BODY = {
    "id": ("s", True), "order_no": ("s", True), "outcome": ("s", True), "business_date": ("s", False),
    "amount": ("i", False), "approved_amount": ("i", False), "currency": ("s", False),
    "auth_code": ("s", False), "masked_pan": ("s", False), "scheme": ("s", False),
    "entry_mode": ("s", False), "terminal_id": ("s", False), "stan": ("s", False), "rrn": ("s", False),
    "reason": (_REASON, False), "emv": ("os", False), "receipt": (_RECEIPT, False), "balance": ("i", False),
}
# The stored result inside order_status may come from another connection: its id is informative.
_STORED_RESULT = dict(_RESULT_BODY, id=("s", False))
_TOTALS_LINE = {"kind": ("s", True), "outcome": ("s", True), "currency": ("s", True),
                "count": ("i", True), "amount": ("i", True)}

SERVER_MESSAGES: dict[str, dict[str, Any]] = {
    "login_ok": {"id": ("s", True), "server": ("s", True), "business_date": ("s", True),
                 "version": ("i", True), "capabilities": ("ls", False)},
    "status": {"id": ("s", False), "order_no": ("s", False), "stage": ("s", False), "text": ("s", False)},
    "prompt": {"id": ("s", False), "prompt_id": ("s", True), "order_no": ("s", True), "kind": ("s", True),
               "text": ("s", True), "options": ("ls", False), "timeout_ms": ("i", False),
               "default": ("s", False)},
    "result": _RESULT_BODY,
    "order_status": {"id": ("s", True), "order_no": ("s", True), "state": ("s", True),
                     "business_date": ("s", False), "last_result": (_STORED_RESULT, False)},
    "error": {"id": ("s", False), "code": ("s", True), "message": ("s", False), "order_no": ("s", False),
              "active_server": ("s", False)},
    "heartbeat_ack": {"id": ("s", True)},
    "logout_ok": {"id": ("s", True)},
    "totals_report": {"id": ("s", True), "till_id": ("s", False), "business_date": ("s", False),
                      "lines": (("list", _TOTALS_LINE), False), "net": ("oi", False)},
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_value(path: str, kind: Any, value: Any) -> Any:
    bad = DecodeError("pos.bad_field", f"field '{path}' has the wrong type", path)
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise bad
        return _check_object(value, kind, path + ".")
    if isinstance(kind, tuple):  # ("list", schema)
        if not isinstance(value, list):
            raise bad
        return [_check_value(f"{path}[{i}]", kind[1], v) for i, v in enumerate(value)]
    if kind == "s" and not isinstance(value, str):
        raise bad
    if kind == "i" and not _is_int(value):
        raise bad
    if kind == "ls" and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
        raise bad
    if kind == "os" and not (isinstance(value, dict) and all(isinstance(x, str) for x in value.values())):
        raise bad
    if kind == "oi" and not (isinstance(value, dict) and all(_is_int(x) for x in value.values())):
        raise bad
    return value


def _check_object(obj: dict, schema: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in obj.items():
        spec = schema.get(key)
        if value is None:
            if spec is not None and spec[1]:
                raise DecodeError("pos.bad_field", f"field '{prefix}{key}' is null", prefix + key)
            continue  # null in an optional field means absent
        out[key] = _check_value(prefix + key, spec[0], value) if spec is not None else value
    for key, (_, required) in schema.items():
        if required and key not in out:
            raise DecodeError("pos.missing_field", f"field '{prefix}{key}' is required", prefix + key)
    return out


def decode_line(line: bytes | str) -> Optional[dict]:
    """One received line (without its "\\n") as a message dict; None for an empty line.
    Raises DecodeError: pos.bad_json, pos.missing_field, pos.bad_field, pos.unsupported_version,
    pos.unknown_type (a type this version does not know: ignore it), pos.unexpected (a request
    type, which never goes server -> POS). Unknown fields are kept; null fields are dropped."""
    if isinstance(line, bytes):
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("pos.bad_json", "line is not UTF-8") from None
    else:
        text = line[:-1] if line.endswith("\r") else line
    if not text.strip():
        return None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise DecodeError("pos.bad_json", "line is not JSON") from None
    if not isinstance(obj, dict):
        raise DecodeError("pos.bad_json", "line is not a JSON object")
    # The version comes first: a message of another version may have another layout.
    if "v" not in obj or obj["v"] is None:
        raise DecodeError("pos.missing_field", "field 'v' is required", "v")
    if not _is_int(obj["v"]):
        raise DecodeError("pos.bad_field", "field 'v' has the wrong type", "v")
    if obj["v"] != PROTOCOL_VERSION:
        raise DecodeError("pos.unsupported_version", "message version is not 1", "v")
    mtype = obj.get("type")
    if mtype is None:
        raise DecodeError("pos.missing_field", "field 'type' is required", "type")
    if not isinstance(mtype, str):
        raise DecodeError("pos.bad_field", "field 'type' has the wrong type", "type")
    schema = SERVER_MESSAGES.get(mtype)
    if schema is None:
        if mtype in REQUEST_FIELDS:
            raise DecodeError("pos.unexpected", f"'{mtype}' does not go from server to POS", "type")
        raise DecodeError("pos.unknown_type", f"unknown message type '{mtype}'", "type")
    return _check_object(obj, schema)


class LineBuffer:
    """Splits a byte stream into lines of at most `limit` bytes (not counting "\\n").

    feed() returns the complete lines (without "\\n"; a trailing "\\r" is left for decode_line).
    A longer line, or more than `limit` bytes without a "\\n", raises
    ConnectionLost(code="pos.frame_too_large"): the stream can no longer be resynchronised.
    """

    def __init__(self, limit: int = MAX_LINE):
        self._buf = bytearray()
        self._limit = limit
        self._scanned = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines = []
        start = 0
        while True:
            nl = self._buf.find(b"\n", max(start, self._scanned))
            if nl < 0:
                break
            if nl - start > self._limit:
                raise self._too_large()
            lines.append(bytes(self._buf[start:nl]))
            start = nl + 1
            self._scanned = start
        del self._buf[:start]
        self._scanned = len(self._buf)
        if len(self._buf) > self._limit:
            raise self._too_large()
        return lines

    def pending(self) -> int:
        return len(self._buf)

    def _too_large(self) -> ConnectionLost:
        return ConnectionLost(f"line over {self._limit} bytes", code="pos.frame_too_large")


# ---------------------------------------------------------------------------------------------
# TLS


def tls_context(ca_file: Optional[str] = None, cert_file: Optional[str] = None,
                key_file: Optional[str] = None, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A client context for production: TLS 1.2 or newer, the till's certificate (its subject CN
    is the till id) and the CA that issued the server's certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


# ---------------------------------------------------------------------------------------------
# One connection: socket (+ TLS), a reader thread that decodes lines and routes each message by
# its `id` to the waiting request.


class _Closed:
    def __init__(self, error: PosError):
        self.error = error


def _fresh(err: PosError) -> PosError:
    """A copy to raise: one connection error reaches several threads, and raising the same
    instance in each would chain their tracebacks together."""
    e = copy.copy(err)
    e.__traceback__ = None
    return e


class _EpochFloor:
    """The highest fencing epoch a client has seen, across its connections (PROTOCOL.md
    section 3): a message with a lower one comes from a node of a hot-standby pair that has been
    deposed since, and must not be acted on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def accept(self, epoch: int) -> bool:
        with self._lock:
            if epoch < self.value:
                return False
            self.value = epoch
            return True


class _Connection:
    def __init__(self, host: str, port: int, tls: Optional[ssl.SSLContext], connect_timeout: float,
                 io_timeout: float, epoch: Optional[_EpochFloor] = None):
        self.peer = f"{host}:{port}"
        self._epoch = epoch if epoch is not None else _EpochFloor()
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as e:
            raise ConnectionLost(f"cannot connect to {self.peer}: {e.strerror or e}") from None
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        # The same timeout bounds sendall (a peer that stops reading) and each recv of the
        # reader thread (which then just checks whether it should stop).
        self._io_timeout = io_timeout
        self._sock.settimeout(io_timeout)
        self._io_lock = threading.Lock()  # send order; also guards the TLS object
        self._tls: Optional[ssl.SSLObject] = None
        if tls is not None:
            self._handshake(tls, host, connect_timeout)
        self._lines = LineBuffer()
        self._waiters: dict[str, queue.Queue] = {}
        self._by_order: dict[str, queue.Queue] = {}  # running transactions by order_no
        self._state_lock = threading.Lock()
        self._closed = False
        self._error: Optional[PosError] = None
        self.server_error: Optional[ServerError] = None  # last id-less error (connection level)
        self.last_rx = time.monotonic()
        self._ids = itertools.count(1)
        self._reader = threading.Thread(target=self._read_loop, name=f"eftd_pos-reader-{self.peer}",
                                        daemon=True)
        self._reader.start()

    # -- TLS over memory BIOs: one thread reads the socket while others write, which an
    # ssl.SSLSocket does not allow; the lock serialises every use of the TLS object.
    def _handshake(self, ctx: ssl.SSLContext, host: str, timeout: float) -> None:
        self._in_bio, self._out_bio = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(self._in_bio, self._out_bio, server_side=False, server_hostname=host)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush_tls()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Timeout("TLS handshake did not finish") from None
                    self._sock.settimeout(left)
                    data = self._sock.recv(65536)
                    if not data:
                        raise ConnectionLost("server closed the connection during the TLS handshake")
                    self._in_bio.write(data)
            self._flush_tls()
        except ssl.SSLError as e:
            self._sock.close()
            raise ConnectionLost(f"TLS handshake with {self.peer} failed: {e.reason or e}") from None
        except OSError as e:
            self._sock.close()
            raise ConnectionLost(f"TLS handshake with {self.peer} failed: {e}") from None
        except PosError:
            self._sock.close()
            raise
        self._sock.settimeout(self._io_timeout)
        self._tls = tls

    def _flush_tls(self) -> None:
        data = self._out_bio.read()
        if data:
            self._sock.sendall(data)

    # -- requests
    def next_id(self) -> str:
        return str(next(self._ids))

    def register(self, rid: str, q: queue.Queue) -> None:
        with self._state_lock:
            if self._closed:
                raise self._error_for_caller()
            self._waiters[rid] = q

    def unregister(self, rid: str) -> None:
        with self._state_lock:
            self._waiters.pop(rid, None)

    def track_order(self, order_no: str, q: queue.Queue) -> bool:
        """Routes status/prompt/result of order_no that carry no id to q (prompt.id is
        optional). The first transaction of an order keeps it."""
        with self._state_lock:
            if order_no in self._by_order:
                return False
            self._by_order[order_no] = q
            return True

    def untrack_order(self, order_no: str, q: queue.Queue) -> None:
        with self._state_lock:
            if self._by_order.get(order_no) is q:
                del self._by_order[order_no]

    def send(self, line: bytes) -> None:
        with self._io_lock:
            if self._closed:
                raise self._error_for_caller()
            try:
                if self._tls is not None:
                    self._tls.write(line)
                    self._flush_tls()
                else:
                    self._sock.sendall(line)
            except (OSError, ssl.SSLError) as e:
                err = ConnectionLost(f"sending to {self.peer} failed: {e}")
                self._fail(err)
                raise err from None

    @property
    def closed(self) -> bool:
        return self._closed

    def error(self) -> Optional[PosError]:
        return self._error

    def _error_for_caller(self) -> PosError:
        return _fresh(self._error) if self._error else ConnectionLost("not connected")

    # -- reader thread
    def _read_loop(self) -> None:
        try:
            while not self._closed:
                try:
                    data = self._sock.recv(65536)
                except (socket.timeout, TimeoutError):
                    continue
                except OSError as e:
                    if not self._closed:
                        self._fail(self._lost(f"connection to {self.peer} failed: {e}"))
                    return
                if self._tls is not None:
                    data, eof = self._tls_decrypt(data)
                else:
                    eof = not data
                if data:
                    for line in self._lines.feed(data):
                        self._dispatch(line)
                if eof:
                    if self._lines.pending():
                        _log.warning("connection closed in the middle of a line (%d bytes dropped)",
                                     self._lines.pending())
                    self._fail(self._lost(f"server {self.peer} closed the connection"))
                    return
        except ConnectionLost as e:  # frame too large: the stream cannot be resynchronised
            self._fail(e)
        except Exception as e:  # noqa: BLE001 - a reader that dies silently would hang callers
            _log.exception("reader thread failed")
            self._fail(ConnectionLost(f"reader failed: {e}"))
        finally:
            try:
                self._sock.close()
            except OSError:
                pass

    def _tls_decrypt(self, data: bytes) -> tuple[bytes, bool]:
        with self._io_lock:
            if not data:
                return b"", True
            self._in_bio.write(data)
            out = bytearray()
            eof = False
            while True:
                try:
                    chunk = self._tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    eof = True
                    break
                except ssl.SSLError as e:
                    # An alert from the server (e.g. it refused our certificate after the handshake).
                    self._fail(self._lost(f"TLS error from {self.peer}: {e.reason or e}"))
                    eof = True
                    break
                if not chunk:
                    eof = True
                    break
                out += chunk
            try:
                self._flush_tls()  # TLS 1.3 post-handshake messages, key updates
            except OSError:
                pass
            return bytes(out), eof

    def _lost(self, message: str) -> ConnectionLost:
        if self.server_error is not None:
            message += f" (server said {self.server_error})"
        return ConnectionLost(message, server_error=self.server_error)

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = decode_line(line)
        except DecodeError as e:
            # Forward compatibility: new message types are ignored. Anything else malformed is
            # dropped too; if it was the awaited reply the caller's timeout starts recovery.
            level = logging.DEBUG if e.code == "pos.unknown_type" else logging.WARNING
            _log.log(level, "ignoring a message from %s: %s", self.peer, e)
            return
        if msg is None:
            return  # empty line: keep-alive
        epoch = msg.get("epoch")
        if _is_int(epoch) and epoch > 0 and not self._epoch.accept(epoch):
            self._fail(self._lost(f"server {self.peer} answered with epoch {epoch}, older than epoch "
                                  f"{self._epoch.value} already seen: a deposed node"))
            return
        self.last_rx = time.monotonic()
        rid = msg.get("id", "")
        with self._state_lock:
            q = self._waiters.get(rid) if rid else None
            if q is None and msg["type"] in ("status", "prompt", "result") and "order_no" in msg:
                q = self._by_order.get(msg["order_no"])
            if q is None and msg["type"] == "error" and not rid:
                # A connection-level error (not_active, too_many_connections, login_timeout,
                # frame_timeout...): every waiting request gets it; the server may close next.
                self.server_error = ServerError.from_reply(msg)
                targets = list(self._waiters.values())
            else:
                targets = [q] if q is not None else []
        if not targets:
            _log.debug("no request waits for %s id=%r; dropped", msg["type"], rid)
        for t in targets:
            t.put(msg)

    def _fail(self, err: PosError) -> None:
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self._error = err
            waiters = list(self._waiters.values())
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv
        except OSError:
            pass
        for q in waiters:
            q.put(_Closed(err))

    def close(self, reason: str = "closed by the client") -> None:
        self._fail(ConnectionLost(reason))
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout=5.0)


# ---------------------------------------------------------------------------------------------
# The client


def _parse_address(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not host:port: {addr!r}")
    return host.strip("[]"), int(port)


class Client:
    """A till's session with eftd. One connection at a time; methods are thread-safe: a
    transaction (sale, refund...) may run in one thread while another calls abort(),
    status() or ping() on the same client.

    inactivity_timeout: a running transaction is declared lost after this long without any
        message from the server (the server sends a status at least every 5 s).
    reply_timeout: how long login, logout, heartbeat, status_query, totals and abort wait for
        their reply.
    """

    def __init__(self, host: str, port: int, *, tls: Optional[ssl.SSLContext] = None,
                 inactivity_timeout: float = 30.0, reply_timeout: float = 10.0,
                 connect_timeout: Optional[float] = None, client_name: str = CLIENT_NAME):
        self.host = host
        self.port = port
        self.tls = tls
        self.inactivity_timeout = inactivity_timeout
        self.reply_timeout = reply_timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else reply_timeout
        self.client_name = client_name
        self._conn: Optional[_Connection] = None
        self._conn_lock = threading.Lock()
        self._till_id: Optional[str] = None
        self._operator_id: Optional[str] = None
        self._capabilities: tuple[str, ...] = ("prompt",)
        self.login_ok: Optional[dict] = None
        self._epoch = _EpochFloor()

    @property
    def epoch(self) -> int:
        """The highest fencing epoch any server answered with (0: a single server)."""
        return self._epoch.value

    # -- connection
    def connect(self) -> None:
        """Opens the connection (login() does it when needed)."""
        with self._conn_lock:
            if self._conn is not None and not self._conn.closed:
                return
            self.login_ok = None
            self._conn = _Connection(self.host, self.port, self.tls, self.connect_timeout,
                                     max(self.reply_timeout, 1.0), self._epoch)

    def close(self) -> None:
        """Closes the connection without logout. A running transaction goes on on the server;
        its thread here gets ConnectionLost."""
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed

    @property
    def business_date(self) -> str:
        """The business date from login_ok ("" before login)."""
        return (self.login_ok or {}).get("business_date", "")

    @property
    def server_capabilities(self) -> list[str]:
        return list((self.login_ok or {}).get("capabilities", []))

    def _live(self) -> _Connection:
        conn = self._conn
        if conn is None:
            raise ConnectionLost("not connected")
        if conn.closed:
            raise conn._error_for_caller()
        return conn

    def _open(self, conn: _Connection, msg_type: str, fields: dict) -> tuple[str, queue.Queue]:
        rid = conn.next_id()
        line = encode(msg_type, rid, **fields)
        q: queue.Queue = queue.Queue()
        conn.register(rid, q)  # before sending: the reply may be back before send() returns
        try:
            conn.send(line)
        except PosError:
            conn.unregister(rid)
            raise
        return rid, q

    def _timeout(self, conn: _Connection, what: str) -> Timeout:
        err = Timeout(what)
        # The session's state is in doubt: close it; the next step is recover().
        conn._fail(ConnectionLost(f"closed after a timeout ({what})"))
        return err

    def _next(self, conn: _Connection, q: queue.Queue, deadline: Callable[[], float], what: str) -> dict:
        while True:
            left = deadline() - time.monotonic()
            if left <= 0:
                raise self._timeout(conn, what)
            try:
                item = q.get(timeout=left)
            except queue.Empty:
                continue  # the deadline may have moved (inactivity): check again
            if isinstance(item, _Closed):
                raise _fresh(item.error)
            return item

    def _request(self, msg_type: str, expect: str, fields: Optional[dict] = None,
                 conn: Optional[_Connection] = None) -> dict:
        conn = conn or self._live()
        rid, q = self._open(conn, msg_type, fields or {})
        deadline = time.monotonic() + self.reply_timeout
        try:
            while True:
                msg = self._next(conn, q, lambda: deadline, f"no reply to {msg_type} within "
                                 f"{self.reply_timeout:g} s")
                if msg["type"] == expect:
                    return msg
                if msg["type"] == "error":
                    raise ServerError.from_reply(msg)
                _log.warning("unexpected %s in reply to %s; still waiting", msg["type"], msg_type)
        finally:
            conn.unregister(rid)

    # -- session
    def login(self, till_id: str, operator_id: Optional[str] = None,
              capabilities: Iterable[str] = ("prompt",)) -> dict:
        """Connects if needed and logs the till in. Returns login_ok."""
        caps = tuple(capabilities)
        self._till_id, self._operator_id, self._capabilities = till_id, operator_id, caps
        self.connect()
        conn = self._live()
        ok = self._request("login", "login_ok", {"till_id": till_id, "operator_id": operator_id,
                                                 "client": self.client_name, "version": PROTOCOL_VERSION,
                                                 "capabilities": caps}, conn)
        if ok["version"] != PROTOCOL_VERSION:
            conn.close("server chose an unknown protocol version")
            raise ProtocolError(f"server chose protocol version {ok['version']}")
        self.login_ok = ok
        return ok

    def logout(self) -> dict:
        """Ends the session (ServerError busy while a transaction runs). Returns logout_ok and
        closes the connection."""
        ok = self._request("logout", "logout_ok")
        self.close()
        return ok

    def ping(self) -> dict:
        """heartbeat -> heartbeat_ack. An idle POS should call it every 30 s."""
        return self._request("heartbeat", "heartbeat_ack")

    def status(self, order_no: str, business_date: Optional[str] = None) -> dict:
        """status_query -> order_status (state, business_date, last_result)."""
        return self._request("status_query", "order_status",
                             {"order_no": order_no, "business_date": business_date})

    def totals(self, business_date: Optional[str] = None) -> dict:
        """totals -> totals_report for this till (default: the current business date)."""
        return self._request("totals", "totals_report", {"business_date": business_date})

    def abort(self, order_no: str) -> dict:
        """Asks the server to stop the running transaction of order_no; callable from any thread
        while sale() & co. wait. Returns the acknowledging status (stage "aborting"); the
        transaction call then returns its own result (outcome "cancelled" unless it was too
        late). ServerError unknown_order when no such transaction runs."""
        return self._request("abort", "status", {"order_no": order_no})

    # -- transactions
    def sale(self, order_no: str, amount: int, currency: str, cashback: int = 0, tip: int = 0,
             business_date: Optional[str] = None, on_status: Optional[Callable[[dict], Any]] = None,
             on_prompt: Optional[Callable[[dict], Optional[str]]] = None) -> dict:
        """A payment of `amount` minor units (cashback and tip included). Returns the result dict
        (any outcome: approved, declined, cancelled, failed). A retry after recover() said
        `unknown` uses the same order_no (and the business_date of the first attempt)."""
        return self._transaction("sale", {"order_no": order_no, "amount": amount, "currency": currency,
                                          "cashback": cashback, "tip": tip, "business_date": business_date},
                                 on_status, on_prompt)

    def refund(self, order_no: str, amount: int, currency: str, original_order_no: Optional[str] = None,
               original_business_date: Optional[str] = None, business_date: Optional[str] = None,
               on_status: Optional[Callable[[dict], Any]] = None,
               on_prompt: Optional[Callable[[dict], Optional[str]]] = None) -> dict:
        return self._transaction("refund", {"order_no": order_no, "amount": amount, "currency": currency,
                                            "original_order_no": original_order_no,
                                            "original_business_date": original_business_date,
                                            "business_date": business_date}, on_status, on_prompt)

    def preauth(self, order_no: str, amount: int, currency: str,
                on_status: Optional[Callable[[dict], Any]] = None,
                on_prompt: Optional[Callable[[dict], Optional[str]]] = None) -> dict:
        """Reserves `amount` on a card (hotels, rentals); nothing is charged until completion()."""
        return self._transaction("preauth", {"order_no": order_no, "amount": amount, "currency": currency},
                                 on_status, on_prompt)

    def completion(self, order_no: str, preauth_order_no: str, amount: int, currency: str) -> dict:
        """Charges a pre-authorisation's final amount (at most what was authorised); no card."""
        return self._transaction("completion", {"order_no": order_no, "preauth_order_no": preauth_order_no,
                                                "amount": amount, "currency": currency}, None, None)

    def incremental(self, order_no: str, preauth_order_no: str, amount: int, currency: str) -> dict:
        """Raises a pre-authorisation by `amount` (an online request; no card)."""
        return self._transaction("incremental", {"order_no": order_no, "preauth_order_no": preauth_order_no,
                                                 "amount": amount, "currency": currency}, None, None)

    def cancel(self, order_no: str, business_date: Optional[str] = None,
               on_status: Optional[Callable[[dict], Any]] = None,
               on_prompt: Optional[Callable[[dict], Optional[str]]] = None) -> dict:
        """Cancels a completed order. Result outcome "approved" = cancelled (the order's state
        becomes "reversed"); "declined" with a reason when there is nothing to cancel."""
        return self._transaction("cancel", {"order_no": order_no, "business_date": business_date},
                                 on_status, on_prompt)

    def balance_inquiry(self, order_no: str, on_status: Optional[Callable[[dict], Any]] = None,
                        on_prompt: Optional[Callable[[dict], Optional[str]]] = None) -> dict:
        """Card balance: result["balance"] in minor units of result["currency"]."""
        return self._transaction("balance_inquiry", {"order_no": order_no}, on_status, on_prompt)

    def _transaction(self, msg_type: str, fields: dict, on_status: Optional[Callable[[dict], Any]],
                     on_prompt: Optional[Callable[[dict], Optional[str]]]) -> dict:
        conn = self._live()
        started = time.monotonic()
        rid = conn.next_id()
        line = encode(msg_type, rid, **fields)
        q: queue.Queue = queue.Queue()
        order_no = fields["order_no"]
        conn.register(rid, q)
        tracked = conn.track_order(order_no, q)
        answers: dict[str, tuple[dict, str]] = {}  # answer id -> (prompt, value sent)
        retries: dict[str, int] = {}

        # Inactivity, not a total: every message from the server moves the deadline.
        def deadline() -> float:
            return max(started, conn.last_rx) + self.inactivity_timeout

        what = f"no message for {self.inactivity_timeout:g} s during {msg_type} {order_no}"
        try:
            conn.send(line)
            while True:
                msg = self._next(conn, q, deadline, what)
                mtype = msg["type"]
                if msg.get("id") != rid and msg.get("id") in answers:
                    self._answer_refused(conn, q, msg, answers, retries, on_prompt)
                elif mtype == "result":
                    return msg
                elif mtype == "error":
                    raise ServerError.from_reply(msg)
                elif mtype == "status":
                    _call(on_status, msg)
                elif mtype == "prompt":
                    self._answer(conn, q, msg, _ask(on_prompt, msg), answers)
                else:
                    _log.warning("unexpected %s during %s; ignored", mtype, msg_type)
        finally:
            conn.unregister(rid)
            if tracked:
                conn.untrack_order(order_no, q)
            for aid in answers:
                conn.unregister(aid)

    def _answer(self, conn: _Connection, q: queue.Queue, prompt: dict, value: Optional[str],
                answers: dict) -> None:
        if value is None:
            return  # no answer: the server takes the default when timeout_ms runs out
        # No reply on success; an error for this id comes back into the transaction's queue.
        aid, _ = self._open_into(conn, q, "answer", {"prompt_id": prompt["prompt_id"], "value": value})
        answers[aid] = (prompt, value)

    def _open_into(self, conn: _Connection, q: queue.Queue, msg_type: str, fields: dict) -> tuple[str, queue.Queue]:
        rid = conn.next_id()
        line = encode(msg_type, rid, **fields)
        conn.register(rid, q)
        conn.send(line)
        return rid, q

    def _answer_refused(self, conn: _Connection, q: queue.Queue, msg: dict, answers: dict, retries: dict,
                        on_prompt: Optional[Callable[[dict], Optional[str]]]) -> None:
        prompt, value = answers[msg["id"]]
        code = msg.get("code", "")
        if code == "unknown_prompt":
            # It timed out (default taken) or was answered already: the transaction goes on.
            _log.info("answer to prompt %s came too late: %s", prompt["prompt_id"], msg.get("message", ""))
            return
        n = retries.get(prompt["prompt_id"], 0) + 1
        retries[prompt["prompt_id"]] = n
        _log.warning("answer to prompt %s refused (%s): %s", prompt["prompt_id"], code, msg.get("message", ""))
        if code == "pos.bad_field" and n <= 3:
            # The prompt stays open: ask again, telling the handler what was wrong.
            again = dict(prompt, rejected_value=value, rejected_message=msg.get("message", ""))
            self._answer(conn, q, prompt, _ask(on_prompt, again, fallback=False), answers)

    # -- recovery (PROTOCOL.md section 8)
    def recover(self, order_no: str, business_date: Optional[str] = None, *, till_id: Optional[str] = None,
                wait: float = 60.0, poll_interval: float = 3.0) -> dict:
        """After ConnectionLost/Timeout: reconnect, login again with the same till, status_query.

        Returns the stored result of a finished order with an extra key "state" (approved,
        declined, cancelled, failed, reversed). Take `state` as what happened: "reversed" means
        no money moved even if the stored result says approved. While the order is in_progress
        it asks again every poll_interval seconds, up to `wait` seconds; connection failures
        (server restarting, till still held by the dead connection) are retried the same way.
        Raises OrderUnknown (safe to send again with the SAME order number), StillInProgress,
        or the last error when the wait ends."""
        till = till_id or self._till_id
        if not till:
            raise ValueError("recover() needs a till_id (no login on this client yet)")
        end = time.monotonic() + wait
        pause = threading.Event()
        redirected = False
        last_error: Optional[PosError] = None
        while True:
            try:
                self.close()
                self.login(till, self._operator_id, self._capabilities)
                while True:
                    st = self.status(order_no, business_date)
                    state = st["state"]
                    if state in FINAL_STATES:
                        stored = dict(st.get("last_result") or {"order_no": order_no})
                        stored["state"] = state
                        stored.setdefault("business_date", st.get("business_date", ""))
                        return stored
                    if state == "unknown":
                        raise OrderUnknown(f"eftd never received order {order_no}: send it again with the "
                                           "same order number")
                    if state != "in_progress":
                        raise ProtocolError(f"order_status state {state!r} is not in protocol version 1")
                    last_error = StillInProgress(f"order {order_no} is still in progress")
                    if time.monotonic() + poll_interval > end:
                        raise last_error
                    pause.wait(poll_interval)
            except ServerError as e:
                if e.code == "not_active" and e.active_server and not redirected:
                    self.host, self.port = _parse_address(e.active_server)
                    redirected = True
                    continue
                if e.code not in ("till_in_use", "internal"):
                    raise
                last_error = e
            except (ConnectionLost, Timeout) as e:
                last_error = e
            if time.monotonic() + poll_interval > end:
                raise last_error
            pause.wait(poll_interval)


def _call(callback: Optional[Callable[[dict], Any]], msg: dict) -> Any:
    if callback is None:
        return None
    try:
        return callback(msg)
    except Exception:  # noqa: BLE001 - the transaction runs on: its result must still be read
        _log.exception("callback failed for %s", msg.get("type"))
        return None


def _ask(on_prompt: Optional[Callable[[dict], Optional[str]]], prompt: dict, fallback: bool = True) -> Optional[str]:
    if on_prompt is None:
        # Without a handler, answer with the prompt's default at once instead of letting the
        # customer wait for timeout_ms.
        return (prompt.get("default") or None) if fallback else None
    value = _call(on_prompt, prompt)
    if value is not None and not isinstance(value, str):
        _log.error("prompt handler returned %s, not a string; no answer sent", type(value).__name__)
        return None
    return value


def console_prompt(prompt: dict, *, read: Callable[[str], str] = input, out: Any = None) -> Optional[str]:
    """Renders any prompt from its data (kind, text, options, default, timeout_ms) on a terminal
    and reads the answer. Empty input takes the default. For use as on_prompt."""
    out = out or sys.stderr
    kind, options, default = prompt["kind"], prompt.get("options", []), prompt.get("default", "")
    if prompt.get("rejected_message"):
        print(f"  ! {prompt['rejected_message']}", file=out)
    print(prompt["text"], file=out)
    if kind == "menu":
        for i, opt in enumerate(options, 1):
            print(f"  {i}) {opt}", file=out)
    hint = {"yes_no": "yes/no", "menu": "number or option", "numeric": "digits", "text": "text"}.get(kind, kind)
    timeout = prompt.get("timeout_ms", 0)
    suffix = f", default {default!r}" if default else ""
    suffix += f", {timeout / 1000:g} s" if timeout else ""
    print(f"[{hint}{suffix}]", file=out, flush=True)
    try:
        value = read("> ").strip()
    except EOFError:
        return default or None
    if not value:
        return default or None
    if kind == "menu" and value.isdigit() and 1 <= int(value) <= len(options) and value not in options:
        return options[int(value) - 1]
    if kind == "yes_no" and value.lower() in ("y", "n"):
        return "yes" if value.lower() == "y" else "no"
    return value


# ---------------------------------------------------------------------------------------------
# Command line


def _print_json(obj: dict) -> None:
    print(json.dumps(obj, separators=(",", ":"), ensure_ascii=False), flush=True)


def _error_json(e: PosError, order_no: str = "") -> dict:
    if isinstance(e, ServerError) and e.reply:
        return e.reply
    out = {"type": "error", "v": PROTOCOL_VERSION, "code": e.code, "message": e.message}
    if order_no:
        out["order_no"] = order_no
    return out


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="eftd_pos.py", description="eftd POS protocol client (reference)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--till", required=True)
    p.add_argument("--operator")
    p.add_argument("--tls-ca", help="CA file for the server certificate (enables TLS)")
    p.add_argument("--tls-cert", help="the till's certificate (PEM)")
    p.add_argument("--tls-key", help="its private key (PEM)")
    p.add_argument("--no-prompts", action="store_true", help="do not offer the prompt capability")
    p.add_argument("--inactivity-timeout", type=float, default=30.0)
    p.add_argument("--recover-wait", type=float, default=60.0,
                   help="seconds to keep asking after a lost connection")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sale")
    s.add_argument("--order", required=True)
    s.add_argument("--amount", type=int, required=True, help="minor units: 12500 = 125.00")
    s.add_argument("--currency", required=True)
    s.add_argument("--cashback", type=int, default=0)
    s.add_argument("--tip", type=int, default=0)
    s.add_argument("--business-date")
    r = sub.add_parser("refund")
    r.add_argument("--order", required=True)
    r.add_argument("--amount", type=int, required=True)
    r.add_argument("--currency", required=True)
    r.add_argument("--original-order")
    r.add_argument("--original-business-date")
    r.add_argument("--business-date")
    c = sub.add_parser("cancel")
    c.add_argument("--order", required=True)
    c.add_argument("--business-date")
    b = sub.add_parser("balance")
    b.add_argument("--order", required=True)
    st = sub.add_parser("status")
    st.add_argument("--order", required=True)
    st.add_argument("--business-date")
    t = sub.add_parser("totals")
    t.add_argument("--business-date")
    sub.add_parser("ping")
    a = p.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    tls = None
    if a.tls_ca or a.tls_cert:
        tls = tls_context(a.tls_ca, a.tls_cert, a.tls_key)
    client = Client(a.host, a.port, tls=tls, inactivity_timeout=a.inactivity_timeout)
    caps = () if a.no_prompts else ("prompt",)
    on_prompt = console_prompt if sys.stdin.isatty() else None
    order = getattr(a, "order", "") or ""

    def on_status(m: dict) -> None:
        print(f"[{m.get('stage', '')}] {m.get('text', '')}", file=sys.stderr, flush=True)

    try:
        client.login(a.till, a.operator, caps)
        if a.cmd == "ping":
            _print_json(client.ping())
        elif a.cmd == "status":
            _print_json(client.status(a.order, a.business_date))
        elif a.cmd == "totals":
            _print_json(client.totals(a.business_date))
        else:
            if a.cmd == "sale":
                run = lambda: client.sale(a.order, a.amount, a.currency, a.cashback, a.tip,  # noqa: E731
                                          a.business_date, on_status, on_prompt)
            elif a.cmd == "refund":
                run = lambda: client.refund(a.order, a.amount, a.currency, a.original_order,  # noqa: E731
                                            a.original_business_date, a.business_date, on_status, on_prompt)
            elif a.cmd == "cancel":
                run = lambda: client.cancel(a.order, a.business_date, on_status, on_prompt)  # noqa: E731
            else:
                run = lambda: client.balance_inquiry(a.order, on_status, on_prompt)  # noqa: E731
            _print_json(_run_transaction(client, order, getattr(a, "business_date", None), run,
                                         a.recover_wait))
        try:
            client.logout()
        except PosError:
            pass
        return 0
    except ServerError as e:
        _print_json(_error_json(e, order))
        return 1
    except OrderUnknown as e:
        print(str(e), file=sys.stderr)
        _print_json(_error_json(e, order))
        return 4
    except PosError as e:
        _print_json(_error_json(e, order))
        return 3
    finally:
        client.close()


def _run_transaction(client: Client, order: str, business_date: Optional[str], run: Callable[[], dict],
                     recover_wait: float) -> dict:
    """Runs the transaction in a worker thread so that Ctrl-C can send abort meanwhile; after a
    lost connection follows the recovery procedure."""
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["result"] = run()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            box["error"] = e

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    aborted = False
    while th.is_alive():
        try:
            th.join(0.5)
        except KeyboardInterrupt:
            if aborted:
                raise
            aborted = True
            print("aborting...", file=sys.stderr, flush=True)
            try:
                client.abort(order)
            except PosError as e:
                print(f"abort: {e}", file=sys.stderr, flush=True)
    if "result" in box:
        return box["result"]
    err = box["error"]
    if isinstance(err, (ConnectionLost, Timeout)):
        print(f"{err}; recovering order {order}", file=sys.stderr, flush=True)
        return client.recover(order, business_date, wait=recover_wait)
    raise err


if __name__ == "__main__":
    sys.exit(main())
