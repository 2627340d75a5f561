"""Test support: real eftd installations (acquirer simulator, eftd, pads as child processes on
free ports) and small fakes. Every wait has a deadline; nothing sleeps blindly.

Binaries come from $EFTD_BIN (CTest sets it to the build's bin/), the source tree from
$EFTD_SOURCE (for etc/demo.toml and the card profiles).
"""

from __future__ import annotations

import json
import os
import queue
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import unittest
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # eftd_pos.py

import eftd_pos  # noqa: E402

SOURCE = Path(os.environ.get("EFTD_SOURCE", HERE.parents[2]))
BIN = Path(os.environ.get("EFTD_BIN", SOURCE / "build" / "bin"))
CARDS = SOURCE / "pinpad-firmware-shim" / "cards"


def require_binaries(*names: str) -> None:
    missing = [n for n in names if not (BIN / n).is_file()]
    if missing:
        raise RuntimeError(f"missing executables in {BIN}: {', '.join(missing)} (set EFTD_BIN)")


class Process:
    """A child process whose stdout is read line by line with deadlines."""

    def __init__(self, args: list[str], stderr_path: str):
        self.args = args
        self._err = open(stderr_path, "ab")
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err)
        self._buf = b""
        self._eof = False
        self.lines: list[str] = []

    def read_line(self, timeout: float) -> Optional[str]:
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                nl = self._buf.find(b"\n")
                if nl >= 0:
                    line = self._buf[:nl].decode("utf-8", "replace")
                    self._buf = self._buf[nl + 1:]
                    self.lines.append(line)
                    return line
                if self._eof:
                    return None
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 4096)
                if not chunk:
                    self._eof = True
                    if self._buf:
                        line, self._buf = self._buf.decode("utf-8", "replace"), b""
                        self.lines.append(line)
                        return line
                    return None
                self._buf += chunk

    def wait_for_prefix(self, prefix: str, timeout: float) -> Optional[str]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            line = self.read_line(left)
            if line is None:
                return None
            if line.startswith(prefix):
                return line[len(prefix):]

    def wait_ready(self, timeout: float = 20.0) -> dict:
        rest = self.wait_for_prefix("READY ", timeout)
        if rest is None:
            raise RuntimeError(f"{Path(self.args[0]).name} exited or did not print READY within {timeout:g} s")
        return json.loads(rest)

    def running(self) -> bool:
        return self.p.poll() is None

    def stop(self, grace: float = 10.0) -> Optional[int]:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if self.p.stdout:
            self.p.stdout.close()
        self._err.close()
        return self.p.returncode

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


def card_track2(profile: str) -> str:
    """Track 2 of a public test card profile. Card data: tests never print it."""
    with open(CARDS / profile, "rb") as f:
        return tomllib.load(f)["card"]["track2"]


def card_pan(profile: str) -> str:
    return card_track2(profile).split("=", 1)[0]


class Installation:
    """Acquirer simulator + eftd with a fresh journal + pads, all real processes, all stopped by
    close() (call it from tearDown / addCleanup)."""

    def __init__(self, tag: str, acquirer_args: tuple[str, ...] = ()):
        require_binaries("eftd", "eftpad", "eft-acquirer-sim")
        self.dir = tempfile.mkdtemp(prefix=f"eftd-py-{tag}-")
        self.procs: list[Process] = []
        self.pads: list["ScriptedPad"] = []
        self.eftd: Optional[Process] = None
        self.pad: Optional[Process] = None
        self.pos_port = 0
        self.pad_port = 0
        try:
            # Development keys (tools/dev-keys): key store, the pads' DUKPT keys, the simulator's ZPK.
            keys = subprocess.run([str(SOURCE / "tools" / "dev-keys"), f"{self.dir}/keys", str(BIN / "eftctl")],
                                  capture_output=True, text=True, timeout=60)
            if keys.returncode != 0:
                raise RuntimeError(f"tools/dev-keys failed: {keys.stderr[-2000:]}")
            self.acquirer = self._spawn("acquirer", [str(BIN / "eft-acquirer-sim"), "--port", "0",
                                                     "--zpk-file", f"{self.dir}/keys/zpk.hex", *acquirer_args])
            self.acquirer_port = self.acquirer.wait_ready()["port"]
        except BaseException:
            self.close()  # the caller never gets an object to clean up
            raise

    def _spawn(self, name: str, args: list[str]) -> Process:
        p = Process(args, os.path.join(self.dir, f"{name}.log"))
        self.procs.append(p)
        return p

    def config_with(self, extra_toml: str = "", listen_pos: str = "") -> str:
        """A copy of etc/demo.toml with more TOML appended (prompt rules, [listen.pos.tls]...)
        and more keys in [listen.pos] (eftd's --set does not reach every key)."""
        path = os.path.join(self.dir, "eftd.toml")
        base = (SOURCE / "etc" / "demo.toml").read_text()
        if listen_pos:
            if "[listen.pos]\n" not in base:
                raise RuntimeError("etc/demo.toml has no [listen.pos] table any more")
            base = base.replace("[listen.pos]\n", "[listen.pos]\n" + listen_pos.strip() + "\n", 1)
        # Relative paths in demo.toml are relative to etc/: keep them working from the copy.
        base = base.replace('bin_table = "bin-ranges.csv"', f'bin_table = "{SOURCE / "etc" / "bin-ranges.csv"}"')
        with open(path, "w") as f:
            f.write(base + "\n" + extra_toml + "\n")
        return path

    def start_eftd(self, *sets: str, config: Optional[str] = None) -> None:
        args = [str(BIN / "eftd"), "-c", config or str(SOURCE / "etc" / "demo.toml"),
                "--set", "listen.pos.port=0", "--set", "listen.pad.port=0",
                "--set", f"acquirers.sim.port={self.acquirer_port}",
                "--set", f"journal.path={self.dir}/eftd.db",
                "--set", f"journal.key_file={self.dir}/journal.key",
                "--set", f"keys.store={self.dir}/keys/keys.store",
                "--set", f"keys.master_key_file={self.dir}/keys/keys.master",
                # ScriptedPad sends track 2 in clear (it has no DUKPT); these tests are about the
                # POS protocol. P2PE itself is tested by the C++ end-to-end tests.
                "--set", "keys.require_p2pe=false"]
        for s in sets:
            args += ["--set", s]
        self.eftd = self._spawn("eftd", args)
        try:
            ready = self.eftd.wait_ready()
        except RuntimeError:
            raise RuntimeError(f"eftd did not start; see {self.dir}/eftd.log:\n{self.log('eftd')[-2000:]}")
        self.pos_port, self.pad_port = ready["pos"], ready["pad"]

    def start_pad(self, card: str, pad_id: str = "P01", serial: str = "VP-0001") -> Process:
        pad = self._spawn(f"pad-{pad_id}", [str(BIN / "eftpad"), "virtual", "--server",
                                            f"127.0.0.1:{self.pad_port}", "--pad-id", pad_id, "--serial", serial,
                                            "--card", str(CARDS / card),
                                            *self.pad_key_args(pad_id)])
        pad.wait_ready()
        self.pad = pad
        return pad

    def pad_key_args(self, pad_id: str) -> list[str]:
        """--dukpt-key for the pads tools/dev-keys made keys for (P01, P02, P03)."""
        path = os.path.join(self.dir, "keys", "pads", f"{pad_id}.dukpt.toml")
        return ["--dukpt-key", path] if os.path.exists(path) else []

    def scripted_pad(self, pad_id: str = "P01", serial: str = "VP-0001",
                     card: str = "visa-approve.toml") -> "ScriptedPad":
        pad = ScriptedPad(self.pad_port, pad_id, serial, card_track2(card))
        self.pads.append(pad)
        return pad

    def log(self, name: str) -> str:
        try:
            return Path(self.dir, f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        for pad in self.pads:
            pad.close()
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                p.kill()
        if os.environ.get("EFTD_KEEP_TMP"):
            print(f"kept {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A PIN pad that speaks the pad channel (pinpad-firmware-shim/PROTOCOL.md) by hand, so that a
# test decides when the customer presents the card: the sale is held at the card step.

T_HELLO, T_HELLO_ACK, T_DISPLAY, T_READ_CARD, T_CANCEL, T_PING = 0x01, 0x02, 0x10, 0x11, 0x12, 0x13
T_ACK, T_PAD_ERROR, T_CARD_READ, T_PONG = 0x80, 0x81, 0x82, 0x83


def _field(tag: int, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(value)) + value


def _fields(body: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i + 3 <= len(body):
        tag, n = struct.unpack_from(">BH", body, i)
        out.append((tag, body[i + 3:i + 3 + n]))
        i += 3 + n
    return out


class ScriptedPad:
    def __init__(self, port: int, pad_id: str, serial: str, track2: str):
        self._track2 = track2.encode("ascii")
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._seq = 0
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._buf = b""
        self.displays: list[list[str]] = []
        self.read_cards = 0
        self.cancels = 0
        self._pending_read: Optional[int] = None
        self._closed = False
        self._send(T_HELLO, 0, _field(1, b"\x01") + _field(2, pad_id.encode()) + _field(3, serial.encode()) +
                   _field(4, b"scripted") + _field(5, b"test"))
        mtype, _, ref, body = self._read_frame(10.0)
        accepted = dict(_fields(body)).get(1) == b"\x01"
        if mtype != T_HELLO_ACK or ref != 1 or not accepted:
            raise RuntimeError("scripted pad: hello not accepted")
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._loop, name="scripted-pad", daemon=True)
        self._thread.start()

    def _send(self, mtype: int, ref: int, body: bytes = b"") -> None:
        with self._send_lock:
            self._seq += 1
            frame = struct.pack(">HBBII", 10 + len(body), 1, mtype, self._seq, ref) + body
            self._sock.sendall(frame)

    def _read_frame(self, timeout: Optional[float]) -> tuple[int, int, int, bytes]:
        self._sock.settimeout(timeout)
        while True:
            if len(self._buf) >= 2:
                (n,) = struct.unpack_from(">H", self._buf)
                if len(self._buf) >= 2 + n:
                    frame, self._buf = self._buf[2:2 + n], self._buf[2 + n:]
                    _, mtype, seq, ref = struct.unpack_from(">BBII", frame)
                    return mtype, seq, ref, frame[10:]
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("server closed the pad connection")
            self._buf += chunk

    def _loop(self) -> None:
        try:
            while True:
                mtype, seq, _, body = self._read_frame(None)
                with self._cond:
                    if mtype == T_DISPLAY:
                        self.displays.append([v.decode() for t, v in _fields(body) if t == 1])
                        self._send(T_ACK, seq)
                    elif mtype == T_PING:
                        self._send(T_PONG, seq)
                    elif mtype == T_READ_CARD:
                        self.read_cards += 1
                        self._pending_read = seq  # held until present_card()/fail_read()
                    elif mtype == T_CANCEL:
                        self.cancels += 1
                        self._send(T_ACK, seq)
                        if self._pending_read is not None:
                            self._send(T_PAD_ERROR, self._pending_read, _field(1, struct.pack(">H", 2)) +
                                       _field(2, b"cancelled"))
                            self._pending_read = None
                    else:
                        self._send(T_PAD_ERROR, seq, _field(1, struct.pack(">H", 5)))
                    self._cond.notify_all()
        except (OSError, ConnectionError, struct.error):
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def wait_read_card(self, timeout: float = 20.0) -> bool:
        """True once eftd has asked for a card (and it is not answered yet)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending_read is not None or self._closed, timeout) and \
                self._pending_read is not None

    def wait_display(self, text: str, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(text in " | ".join(d) for d in self.displays), timeout)

    def wait_cancel(self, timeout: float = 20.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.cancels > 0, timeout)

    def present_card(self, card: Optional[str] = None) -> None:
        """Answers the held read_card with the pad's card, or with the card profile `card`."""
        track2 = card_track2(card).encode("ascii") if card else self._track2
        with self._cond:
            seq, self._pending_read = self._pending_read, None
        if seq is None:
            raise RuntimeError("no read_card to answer")
        self._send(T_CARD_READ, seq, _field(1, b"\x01") + _field(2, track2) + _field(3, b"\x00"))

    def fail_read(self, code: int = 1) -> None:
        with self._cond:
            seq, self._pending_read = self._pending_read, None
        if seq is None:
            raise RuntimeError("no read_card to answer")
        self._send(T_PAD_ERROR, seq, _field(1, struct.pack(">H", code)))

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


class Background:
    """Runs fn in a thread; result() joins with a deadline and re-raises its exception."""

    def __init__(self, fn, *args, **kwargs):
        self._out: dict = {}
        self._thread = threading.Thread(target=self._run, args=(fn, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, fn, args, kwargs) -> None:
        try:
            self._out["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self._out["error"] = e

    def result(self, timeout: float = 60.0):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"background call still running after {timeout:g} s")
        if "error" in self._out:
            raise self._out["error"]
        return self._out["value"]

    def done(self) -> bool:
        return not self._thread.is_alive()


def unique_order(tag: str) -> str:
    unique_order.n += 1
    return f"{tag}{os.getpid() % 10000}{unique_order.n}"


unique_order.n = 0


# ---------------------------------------------------------------------------------------------
# Test PKI: a CA, a server certificate for 127.0.0.1/localhost, and one client certificate per
# till (subject CN = till id), made with the openssl command line tool.


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def make_pki(directory: str, tills: tuple[str, ...] = ("T01",)) -> dict[str, str]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=eftd test CA", "-days", "2",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    Path(directory, "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                             "extendedKeyUsage=serverAuth\n")
    Path(directory, "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    out = {"ca": f"{directory}/ca.crt"}
    for name, subject, ext in [("server", "/CN=localhost", "server.ext")] + \
            [(f"till-{t}", f"/CN={t}", "client.ext") for t in tills]:
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "2", "-extfile", ext)
        out[f"{name}.crt"] = f"{directory}/{name}.crt"
        out[f"{name}.key"] = f"{directory}/{name}.key"
    return out


# ---------------------------------------------------------------------------------------------
# A fake eftd for offline tests: the test drives the server side line by line.


class FakeConn:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buf = b""

    def recv_line(self, timeout: float = 10.0) -> Optional[bytes]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("fake server: no line from the client in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def recv(self, timeout: float = 10.0) -> dict:
        line = self.recv_line(timeout)
        if line is None:
            raise AssertionError("fake server: client closed the connection")
        return json.loads(line)

    def expect(self, msg_type: str, timeout: float = 10.0) -> dict:
        msg = self.recv(timeout)
        if msg.get("type") != msg_type:
            raise AssertionError(f"fake server: expected {msg_type}, got {msg.get('type')}")
        return msg

    def wait_eof(self, timeout: float = 10.0) -> bool:
        """True when the client closes the connection within timeout (lines before are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not chunk:
                return True

    def send(self, msg) -> None:
        data = msg if isinstance(msg, bytes) else json.dumps(msg, separators=(",", ":")).encode() + b"\n"
        self.sock.sendall(data)

    def login(self, server: str = "fake", business_date: str = "2024-05-02") -> dict:
        msg = self.expect("login")
        self.send({"type": "login_ok", "v": 1, "id": msg["id"], "server": server, "business_date": business_date,
                   "version": 1, "capabilities": ["sale", "status_query", "abort", "answer", "heartbeat"]})
        return msg

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class FakeServer:
    def __init__(self, tls=None):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._tls = tls
        self._accepted: "queue.Queue" = queue.Queue()
        self.conns: list[FakeConn] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            if self._tls is not None:
                try:
                    sock.settimeout(10)
                    sock = self._tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    self._accepted.put(e)
                    continue
            self._accepted.put(sock)

    def accept(self, timeout: float = 10.0) -> FakeConn:
        try:
            item = self._accepted.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("fake server: no connection in time") from None
        if isinstance(item, Exception):
            raise item
        conn = FakeConn(item)
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        self._thread.join(5)
        for c in self.conns:
            c.close()


# ---------------------------------------------------------------------------------------------
# Base of the tests against a real eftd.


class EftdTest(unittest.TestCase):
    def install(self, tag: str, card: str = None, scripted: bool = False, sets=(), acquirer_args=(),
                extra_toml: str = "", listen_pos: str = ""):
        self.inst = Installation(tag, tuple(acquirer_args))
        self.addCleanup(self.inst.close)
        config = self.inst.config_with(extra_toml, listen_pos) if extra_toml or listen_pos else None
        self.inst.start_eftd(*sets, config=config)
        self.pad = None
        if card:
            self.inst.start_pad(card)
        elif scripted:
            self.pad = self.inst.scripted_pad()
        return self.inst

    def client(self, **kw) -> "eftd_pos.Client":
        c = eftd_pos.Client("127.0.0.1", self.inst.pos_port, **kw)
        self.addCleanup(c.close)
        return c

    def logged_in(self, till="T01", **kw) -> "eftd_pos.Client":
        c = self.client(**kw)
        c.login(till, "42")
        return c

    def assertNoClearPan(self, messages, card="visa-approve.toml"):
        text = json.dumps(messages)
        # Never print the haystack: it would put card data into the test output.
        self.assertFalse(card_pan(card) in text, "the clear PAN reached the POS")
