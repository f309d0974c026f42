"""Event processing and outputs (issue 4): HTTP/1.1 and HTTP/2 parsing with gzip bodies in the
text output, JSON lines, --eventaddr tcp:// and file rotation, and backpressure from a consumer
that stops reading. nginx (TLS, http2, gzip under /gz/) and curl on 127.0.0.1.
"""
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import helpers
from helpers import ep, select, summarize


class TcpSink:
    """A listener on 127.0.0.1 that accepts one connection and collects it (or, paused, accepts
    and never reads)."""

    def __init__(self, testcase, paused=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if paused:  # a small receive window fills quickly
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.data = bytearray()
        self.paused = paused
        self.conns = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.close)

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            if self.paused:
                continue
            c.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    b = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not b:
                    break
                self.data += b

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


class WsClient:
    """A minimal WebSocket client (RFC 6455, standard library) that collects binary messages."""

    def __init__(self, testcase, port, timeout=10.0):
        import base64
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        testcase.addCleanup(self.sock.close)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"ecaptureq closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"ecaptureq handshake refused: {head!r}")

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        """The next complete message (bytes); None when the server closed."""
        data = b""
        while True:
            try:
                b0, b1 = self._need(2)
            except EOFError:
                return None
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._need(2), "big")
            elif n == 127:
                n = int.from_bytes(self._need(8), "big")
            payload = self._need(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                return None
            if opcode in (0x9, 0xA):  # ping/pong: ignore
                continue
            data += payload
            if b0 & 0x80:
                return data


class WsServer:
    """A minimal WebSocket server (RFC 6455, standard library) for ecapture's ws:// client: checks
    the upgrade request, answers with Sec-WebSocket-Accept, then reads the client's frames
    (masked, 7/16/64-bit lengths, fragmented messages, ping and close) and collects whole
    messages as (opcode, bytes). Protocol violations are collected in `errors`. Paused, it
    completes the handshake and then never reads again (a small receive window fills quickly)."""

    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self, testcase, port=0, paused=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if paused:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.paused = paused
        self.lock = threading.Lock()
        self.messages = []   # (opcode of the first frame, payload)
        self.requests = []   # request lines of the upgrades
        self.errors = []
        self.closes = []     # close codes received
        self.conns = []
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()
        testcase.addCleanup(self.close)

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _recv(self, c, buf, n):
        while len(buf) < n:
            if self._stop.is_set():
                raise EOFError
            try:
                b = c.recv(65536)
            except socket.timeout:
                continue
            if not b:
                raise EOFError
            buf += b
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def _error(self, what):
        with self.lock:
            self.errors.append(what)

    def _serve(self, c):
        import base64
        import hashlib
        c.settimeout(0.2)
        buf = bytearray()
        try:
            while b"\r\n\r\n" not in buf:
                try:
                    b = c.recv(4096)
                except socket.timeout:
                    if self._stop.is_set():
                        return
                    continue
                if not b:
                    return
                buf += b
            head, _, rest = bytes(buf).partition(b"\r\n\r\n")
            buf = bytearray(rest)
            lines = head.decode("latin-1").split("\r\n")
            hdrs = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            with self.lock:
                self.requests.append(lines[0])
            if (hdrs.get("upgrade", "").lower() != "websocket"
                    or "upgrade" not in hdrs.get("connection", "").lower()
                    or hdrs.get("sec-websocket-version") != "13"
                    or len(base64.b64decode(hdrs.get("sec-websocket-key", ""))) != 16):
                self._error(f"bad upgrade request: {head!r}")
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                return
            accept = base64.b64encode(hashlib.sha1(hdrs["sec-websocket-key"].encode()
                                                   + self.GUID).digest()).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                      .encode())
            if self.paused:
                self._stop.wait()
                return
            msg_op, msg = None, bytearray()
            while True:
                b0, b1 = self._recv(c, buf, 2)
                fin, op, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
                if b0 & 0x70:
                    self._error(f"reserved bits set: {b0:#x}")
                if not b1 & 0x80:
                    self._error("unmasked client frame")
                    return
                if n == 126:
                    n = int.from_bytes(self._recv(c, buf, 2), "big")
                elif n == 127:
                    n = int.from_bytes(self._recv(c, buf, 8), "big")
                mask = self._recv(c, buf, 4)
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(self._recv(c, buf, n))) \
                    if n < 4096 else self._unmask(self._recv(c, buf, n), mask)
                if op == 0x8:
                    with self.lock:
                        self.closes.append(int.from_bytes(data[:2], "big") if len(data) >= 2
                                           else None)
                    c.sendall(b"\x88" + bytes([len(data[:2])]) + data[:2])
                    return
                if op == 0x9:
                    c.sendall(b"\x8a" + bytes([len(data)]) + data)
                    continue
                if op == 0xA:
                    continue
                if op in (0x1, 0x2):
                    if msg_op is not None:
                        self._error("new message inside a fragmented one")
                    msg_op, msg = op, bytearray()
                elif op != 0x0 or msg_op is None:
                    self._error(f"unexpected opcode {op}")
                    return
                msg += data
                if fin:
                    with self.lock:
                        self.messages.append((msg_op, bytes(msg)))
                    msg_op = None
        except (EOFError, OSError):
            return

    @staticmethod
    def _unmask(data, mask):
        m = int.from_bytes((mask * (len(data) // 4 + 1))[:len(data)], "big")
        return (int.from_bytes(data, "big") ^ m).to_bytes(len(data), "big")

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self._stop.set()
        for t in self.threads:
            t.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def load_ecaptureq_pb2(tmp):
    """Compiles proto/ecaptureq.proto with protoc --python_out and imports it."""
    import importlib
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(tmp, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", f"--proto_path={root}/proto", f"--python_out={out}",
                    "ecaptureq.proto"], check=True, capture_output=True, timeout=60)
    sys.path.insert(0, out)
    # python3-protobuf is a Debian package: reachable from a python3 on PATH that is not Debian's
    # (same 3.11 minor version, see reference/targets.md §0).
    if "/usr/lib/python3/dist-packages" not in sys.path:
        sys.path.append("/usr/lib/python3/dist-packages")
    try:
        sys.modules.pop("ecaptureq_pb2", None)
        return importlib.import_module("ecaptureq_pb2")
    finally:
        sys.path.remove(out)


class Outputs(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-out-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key, http2=True,
                                  gzip=True).start(cls.cls_procs)
        cls.port = cls.nginx.port
        os.makedirs(os.path.join(cls.nginx.root, "gz"), exist_ok=True)
        os.chmod(os.path.join(cls.nginx.root, "gz"), 0o755)

    def gz_file(self, size=3000):
        """A compressible text file under /gz/; returns (path, body)."""
        name = "gz/" + helpers.rand_token(16) + ".txt"
        line = helpers.rand_printable(60) + b"\n"
        body = (line * (size // len(line) + 1))[:size]
        self.nginx.write_file(name, body)
        return "/" + name, body

    def curl(self, path, *extra):
        out = os.path.join(self.tmp, "curl.out." + helpers.rand_token(6))
        p = self.procs.popen(["curl", "-sS", "--cacert", self.cert, "-o", out, "-w",
                              "%{local_port} %{http_version}", *extra,
                              f"https://127.0.0.1:{self.port}{path}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o, e = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, e.decode(errors="replace"))
        lport, version = o.decode().split()
        with open(out, "rb") as f:
            return p.pid, int(lport), version, f.read()

    def headers_of(self, payload):
        head, body = helpers.split_http(payload)
        return head.decode(errors="replace").split("\r\n"), body

    # -- text: HTTP/1.1 and HTTP/2 ----------------------------------------------------------------

    def test_01_http1_gzip_text(self):
        path, body = self.gz_file()
        with self.run_ecapture(["tls"]) as run:
            pid, lport, version, got = self.curl(path, "--http1.1", "--compressed")
            run.settle()
        self.assertEqual((version, got), ("1.1", body))
        blocks = run.blocks()
        dump = summarize(blocks)
        reqs = [b for b in select(blocks, pid=pid, direction="WRITE") if b.proto == "HTTP/1.1"]
        self.assertEqual(len(reqs), 1, dump)
        lines, _ = self.headers_of(reqs[0].payload)
        self.assertEqual(lines[0], f"GET {path} HTTP/1.1")
        self.assertIn(f"Host: 127.0.0.1:{self.port}", lines)
        self.assertEqual((reqs[0].src, reqs[0].dst), (ep(lport), ep(self.port)))
        resps = [b for b in select(blocks, pid=pid, direction="READ") if b.proto == "HTTP/1.1"]
        self.assertEqual(len(resps), 1, dump)
        lines, got_body = self.headers_of(resps[0].payload)
        self.assertEqual(lines[0], "HTTP/1.1 200 OK")
        self.assertIn("Content-Encoding: gzip", lines)
        self.assertTrue(any(re.fullmatch(r"Server: nginx(/\S+)?", x) for x in lines), lines)
        self.assertEqual(got_body, body, "the decoded (gunzipped, de-chunked) body")
        self.assertFalse(resps[0].partial)

    def test_02_http2_gzip_text(self):
        path, body = self.gz_file()
        with self.run_ecapture(["tls"]) as run:
            pid, lport, version, got = self.curl(path, "--http2", "--compressed")
            run.settle()
        self.assertEqual((version, got), ("2", body))
        blocks = run.blocks()
        dump = summarize(blocks)
        reqs = [b for b in select(blocks, pid=pid, direction="WRITE") if b.proto == "HTTP/2"]
        self.assertEqual(len(reqs), 1, dump)
        lines, _ = self.headers_of(reqs[0].payload)
        self.assertIn(":method: GET", lines)
        self.assertIn(f":path: {path}", lines)
        self.assertIn(f":authority: 127.0.0.1:{self.port}", lines)
        self.assertEqual(reqs[0].stream, 1, reqs[0].header())
        self.assertEqual((reqs[0].src, reqs[0].dst), (ep(lport), ep(self.port)))
        resps = [b for b in select(blocks, pid=pid, direction="READ") if b.proto == "HTTP/2"]
        self.assertEqual(len(resps), 1, dump)
        r = resps[0]
        lines, got_body = self.headers_of(r.payload)
        self.assertEqual((lines[0], r.stream), (":status: 200", 1), r.header())
        self.assertIn("content-encoding: gzip", lines)
        self.assertTrue(any(re.fullmatch(r"server: nginx(/\S+)?", x) for x in lines), lines)
        self.assertEqual(got_body, body, "the decoded (gunzipped) DATA of stream 1")
        # nginx's side of the same request, parsed from its reads.
        n_reqs = [b for b in blocks if b.comm == "nginx" and b.direction == "READ"
                  and b.proto == "HTTP/2" and f":path: {path}".encode() in b.payload]
        self.assertEqual(len(n_reqs), 1, dump)
        self.assertEqual((n_reqs[0].src, n_reqs[0].dst), (ep(lport), ep(self.port)))

    # -- JSON ---------------------------------------------------------------------------------------

    def json_events(self, data):
        out = []
        for line in data.splitlines():
            self.assertTrue(line.strip(), "empty JSON line")
            out.append(json.loads(line))
        return out

    def check_json_request(self, events, pid, lport, path):
        mine = [e for e in events if e["pid"] == pid and e["direction"] == "WRITE"]
        self.assertEqual(len(mine), 1, json.dumps(events)[:3000])
        e = mine[0]
        self.assertEqual((e["src_ip"], e["src_port"], e["dst_ip"], e["dst_port"]),
                         ("127.0.0.1", lport, "127.0.0.1", self.port))
        self.assertEqual((e["proto"], e["type"], e["comm"]), ("HTTP/1.1", 1, "curl"))
        self.assertEqual((e["http"]["method"], e["http"]["path"]), ("GET", path))
        self.assertTrue(e["payload"].startswith(f"GET {path} HTTP/1.1\r\n"), e["payload"][:200])
        self.assertEqual(e["length"], len(e["payload"].encode()))
        return e

    def test_03_json_lines(self):
        path, body = self.gz_file(500)
        with self.run_ecapture(["tls", "--format", "json"]) as run:
            pid, lport, _, got = self.curl(path, "--http1.1", "--compressed")
            run.settle()
        self.assertEqual(got, body)
        events = self.json_events(run.stdout_bytes())
        self.check_json_request(events, pid, lport, path)
        resp = [e for e in events if e["pid"] == pid and e["direction"] == "READ"]
        self.assertEqual(len(resp), 1)
        self.assertEqual((resp[0]["http"]["status"], resp[0]["type"], resp[0]["src_port"],
                          resp[0]["dst_port"]), (200, 3, self.port, lport))
        self.assertTrue(resp[0]["payload"].endswith(body.decode()))

    # -- --eventaddr tcp:// and files --------------------------------------------------------------

    def test_04_eventaddr_tcp(self):
        sink = TcpSink(self)
        path, body = self.gz_file(500)
        with self.run_ecapture(["tls", "--format", "json", "--eventaddr",
                                f"tcp://127.0.0.1:{sink.port}"]) as run:
            pid, lport, _, got = self.curl(path, "--http1.1")
            run.settle()
            helpers.wait_until(lambda: f'"pid":{pid}'.encode() in sink.data, 5)
        self.assertEqual(run.stdout_bytes(), b"", "events go to --eventaddr, not stdout")
        self.check_json_request(self.json_events(bytes(sink.data)), pid, lport, path)
        self.assertRegex(run.stderr_text(),
                         rf"json tcp://127\.0\.0\.1:{sink.port}: messages=[1-9]\d* bytes=\d+ "
                         rf"dropped=0")

    def test_05_file_rotation_by_size(self):
        path = "/" + helpers.rand_token(12) + ".bin"
        big = helpers.rand_printable(1536 * 1024)
        self.nginx.write_file(path[1:], big)
        out = os.path.join(self.tmp, "events.log")
        with self.run_ecapture(["tls", "--eventaddr", out, "--eventroratesize", "1"]) as run:
            pid, lport, _, got = self.curl(path, "--http1.1")
            run.settle(timeout=10)
        self.assertEqual(got, big)
        names = sorted(os.listdir(self.tmp))
        backups = [n for n in names if re.fullmatch(
            r"events-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}(\.\d+)?\.log", n)]
        self.assertGreaterEqual(len(backups), 1, names)
        for n in backups:  # a rotated file stays within 1 MB unless it is one larger message
            with open(os.path.join(self.tmp, n), "rb") as f:
                data = f.read()
            if len(helpers.parse_output(data)) > 1:
                self.assertLessEqual(len(data), 1 << 20, n)
        # All files together are the whole capture, in order: backups by name, then the live one.
        data = b"".join(open(os.path.join(self.tmp, n), "rb").read() for n in sorted(backups))
        data += open(out, "rb").read()
        blocks = helpers.parse_output(data)
        recv = b"".join(b.payload for b in select(blocks, pid=pid, direction="READ"))
        _, body = helpers.split_http(recv)
        self.assertEqual(body, big)

    def test_06_file_rotation_by_time(self):
        out = os.path.join(self.tmp, "ev.txt")
        with self.run_ecapture(["tls", "--eventaddr", out, "--eventroratetime", "1"]) as run:
            p1, _, _, _ = self.curl(self.gz_file(100)[0], "--http1.1")
            helpers.wait_until(lambda: os.path.getsize(out) > 0, 5)
            time.sleep(1.3)
            p2, _, _, _ = self.curl(self.gz_file(100)[0], "--http1.1")
            run.settle()
        backups = [n for n in os.listdir(self.tmp) if re.fullmatch(r"ev-.*\.txt", n)]
        self.assertEqual(len(backups), 1, os.listdir(self.tmp))
        first = helpers.parse_output(open(os.path.join(self.tmp, backups[0]), "rb").read())
        second = helpers.parse_output(open(out, "rb").read())
        self.assertEqual({b.pid for b in first if b.comm == "curl"}, {p1})
        self.assertEqual({b.pid for b in second if b.comm == "curl"}, {p2})

    # -- backpressure --------------------------------------------------------------------------------

    def test_07_paused_tcp_consumer_does_not_stop_file_output(self):
        sink = TcpSink(self, paused=True)
        path = "/" + helpers.rand_token(12) + ".bin"
        big = helpers.rand_printable(12 * 1024 * 1024)
        self.nginx.write_file(path[1:], big)
        out = os.path.join(self.tmp, "events.txt")
        # A 64 MiB ring: what is measured is the paused consumer, not whether the reader keeps
        # up with 12 MB bursts on two busy cores (kernel-side loss has its own tests).
        with self.run_ecapture(["tls", "--mapsize", "16384", "--eventaddr", out, "--eventaddr",
                                f"tcp://127.0.0.1:{sink.port}"]) as run:
            pids = [self.curl(path, "--http1.1")[0] for _ in range(3)]
            run.settle(quiet=1.0, timeout=20)
        blocks = helpers.parse_output(open(out, "rb").read())
        for pid in pids:
            recv = b"".join(b.payload for b in select(blocks, pid=pid, direction="READ"))
            _, body = helpers.split_http(recv)
            self.assertEqual(len(body), len(big), f"curl {pid}: the file got the whole body")
            self.assertEqual(body, big)
        err = run.stderr_text()
        m = re.search(rf"text tcp://127\.0\.0\.1:{sink.port}: messages=(\d+) bytes=(\d+) "
                      rf"dropped=(\d+)", err)
        self.assertIsNotNone(m, err[-3000:])
        self.assertGreater(int(m.group(3)), 0, "the paused consumer must have cost drops")
        fm = re.search(rf"text {re.escape(out)}: messages=(\d+) bytes=(\d+) dropped=0", err)
        self.assertIsNotNone(fm, err[-3000:])
        self.assertEqual(int(fm.group(2)), os.path.getsize(out))

    # -- eCaptureQ ----------------------------------------------------------------------------------

    def test_08_ecaptureq_stream(self):
        pb = load_ecaptureq_pb2(self.tmp)
        port = helpers.free_port()
        path, body = self.gz_file(400)
        with self.run_ecapture(["tls", "--ecaptureq", f"ws://127.0.0.1:{port}/"]) as run:
            ws = WsClient(self, port)
            first = pb.LogEntry()
            first.ParseFromString(ws.recv())
            self.assertEqual(first.log_type, pb.LOG_TYPE_HEARTBEAT)
            self.assertEqual((first.heartbeat_payload.count, first.heartbeat_payload.message),
                             (1, "heartbeat:1"))
            pid, lport, _, got = self.curl(path, "--http1.1")
            self.assertEqual(got, body)
            entries = []
            ws.sock.settimeout(10)

            def have_both():
                evs = [e.event_payload for e in entries if e.log_type == pb.LOG_TYPE_EVENT]
                return (any(e.pid == pid and e.type == 1 for e in evs)
                        and any(e.pid == pid and e.type == 3 for e in evs))
            while not have_both():
                raw = ws.recv()
                self.assertIsNotNone(raw, "ecaptureq closed the stream early")
                e = pb.LogEntry()
                e.ParseFromString(raw)
                entries.append(e)
        self.assertEqual(run.stdout_bytes(), b"", "with --ecaptureq events go to its clients")
        logs = [e.run_log for e in entries if e.log_type == pb.LOG_TYPE_PROCESS_LOG]
        self.assertTrue(any("capture started" in x for x in logs), logs)
        evs = [e.event_payload for e in entries if e.log_type == pb.LOG_TYPE_EVENT]
        req = [e for e in evs if e.pid == pid and e.type == 1][0]
        self.assertEqual((req.src_ip, req.src_port, req.dst_ip, req.dst_port, req.pname),
                         ("127.0.0.1", lport, "127.0.0.1", self.port, "curl"))
        self.assertTrue(req.payload.startswith(f"GET {path} HTTP/1.1\r\n".encode()), req.payload)
        self.assertEqual(req.length, len(req.payload))
        self.assertTrue(req.uuid.startswith(f"{pid}_"), req.uuid)
        self.assertGreater(req.timestamp, 1_600_000_000 * 10**9)
        resp = [e for e in evs if e.pid == pid and e.type == 3][0]
        self.assertEqual((resp.src_port, resp.dst_port), (self.port, lport))
        self.assertTrue(resp.payload.endswith(body), resp.payload[-200:])


    # -- --eventaddr / --logaddr ws:// ------------------------------------------------------------

    def ws_summary(self, run, fmt, url):
        """(messages, bytes, dropped) of the ws:// writer from the exit summary."""
        err = run.stderr_text()
        m = re.search(rf"{fmt} {re.escape(url)}: messages=(\d+) bytes=(\d+) dropped=(\d+)", err)
        self.assertIsNotNone(m, err[-3000:])
        return tuple(int(x) for x in m.groups())

    def test_09_eventaddr_ws_json(self):
        server = WsServer(self)
        url = f"ws://127.0.0.1:{server.port}/events"
        path, body = self.gz_file(700)
        with self.run_ecapture(["tls", "--format", "json", "--eventaddr", url]) as run:
            pid, lport, _, got = self.curl(path, "--http1.1")
            self.assertEqual(got, body)

            def have_response():
                for _, m in server.snapshot():
                    e = json.loads(m)
                    if e["pid"] == pid and e["direction"] == "READ":
                        return True
                return False
            self.assertTrue(helpers.wait_until(have_response, 10), server.snapshot()[:5])
        self.assertEqual(server.errors, [])
        self.assertEqual(server.requests, ["GET /events HTTP/1.1"])
        self.assertEqual(run.stdout_bytes(), b"", "events go to --eventaddr, not stdout")
        msgs = server.snapshot()
        self.assertEqual({op for op, _ in msgs}, {1}, "JSON goes in text frames")
        # One JSON object per WebSocket message.
        events = [json.loads(m) for _, m in msgs]
        for _, m in msgs:
            self.assertEqual(m.count(b"\n"), 1 if m.endswith(b"\n") else 0, m[:200])
        self.check_json_request(events, pid, lport, path)
        resp = [e for e in events if e["pid"] == pid and e["direction"] == "READ"]
        self.assertEqual(len(resp), 1)
        self.assertEqual((resp[0]["src_port"], resp[0]["dst_port"], resp[0]["http"]["status"]),
                         (self.port, lport, 200))
        self.assertTrue(resp[0]["payload"].endswith(body.decode()), resp[0]["payload"][-200:])
        # Everything the writer counted arrived, nothing was dropped; the close was "going away".
        self.assertEqual(self.ws_summary(run, "json", url),
                         (len(msgs), sum(len(m) for _, m in msgs), 0))
        self.assertEqual(server.closes, [1001])

    def test_10_eventaddr_ws_text(self):
        server = WsServer(self)
        url = f"ws://127.0.0.1:{server.port}"  # no path: "/"
        path, body = self.gz_file(300)
        with self.run_ecapture(["tls", "--eventaddr", url]) as run:
            pid, lport, _, got = self.curl(path, "--http1.1")
            self.assertEqual(got, body)
            helpers.wait_until(lambda: sum(f" pid={pid} ".encode() in m
                                           for _, m in server.snapshot()) >= 2, 10)
        self.assertEqual((server.errors, server.requests), ([], ["GET / HTTP/1.1"]))
        msgs = server.snapshot()
        self.assertEqual({op for op, _ in msgs}, {1}, "printable text goes in text frames")
        blocks = []
        for _, m in msgs:
            one = helpers.parse_output(m)
            self.assertEqual(len(one), 1, f"one event per message: {m[:300]!r}")
            blocks += one
        req = select(blocks, pid=pid, direction="WRITE")
        self.assertEqual(len(req), 1, summarize(blocks))
        self.assertEqual((req[0].src, req[0].dst, req[0].comm), (ep(lport), ep(self.port), "curl"))
        self.assertTrue(req[0].payload.startswith(f"GET {path} HTTP/1.1\r\n".encode()))
        resp = select(blocks, pid=pid, direction="READ")
        self.assertEqual(len(resp), 1, summarize(blocks))
        self.assertEqual((resp[0].src, resp[0].dst), (ep(self.port), ep(lport)))
        self.assertEqual(helpers.split_http(resp[0].payload)[1], body)
        self.assertEqual(self.ws_summary(run, "text", url),
                         (len(msgs), sum(len(m) for _, m in msgs), 0))

    def test_11_eventaddr_ws_protobuf(self):
        pb = load_ecaptureq_pb2(self.tmp)
        server = WsServer(self)
        url = f"ws://127.0.0.1:{server.port}/pb"
        path, body = self.gz_file(500)

        def entries():
            out = []
            for op, m in server.snapshot():
                e = pb.LogEntry()
                e.ParseFromString(m)
                out.append((op, e))
            return out
        with self.run_ecapture(["tls", "--format", "protobuf", "--eventaddr", url]) as run:
            pid, lport, _, got = self.curl(path, "--http1.1")
            self.assertEqual(got, body)
            helpers.wait_until(lambda: sum(e.event_payload.pid == pid for _, e in entries()) >= 2,
                               10)
        self.assertEqual(server.errors, [])
        got_entries = entries()
        self.assertEqual({op for op, _ in got_entries}, {2}, "protobuf goes in binary frames")
        evs = [e.event_payload for _, e in got_entries if e.log_type == pb.LOG_TYPE_EVENT]
        self.assertEqual(len(evs), len(got_entries), "not length-prefixed: one LogEntry each")
        req = [e for e in evs if e.pid == pid and e.type == 1]
        self.assertEqual(len(req), 1, evs)
        self.assertEqual((req[0].src_ip, req[0].src_port, req[0].dst_ip, req[0].dst_port,
                          req[0].pname), ("127.0.0.1", lport, "127.0.0.1", self.port, "curl"))
        self.assertTrue(req[0].payload.startswith(f"GET {path} HTTP/1.1\r\n".encode()))
        resp = [e for e in evs if e.pid == pid and e.type == 3]
        self.assertEqual(len(resp), 1, evs)
        self.assertEqual((resp[0].src_port, resp[0].dst_port), (self.port, lport))
        self.assertTrue(resp[0].payload.endswith(body))
        self.assertEqual(self.ws_summary(run, "protobuf", url),
                         (len(got_entries), sum(len(m) for _, m in server.snapshot()), 0))

    def test_12_logaddr_ws(self):
        server = WsServer(self)
        url = f"ws://127.0.0.1:{server.port}/logs"
        with self.run_ecapture(["tls", "--logaddr", url]) as run:
            def logs():
                return [json.loads(m) for _, m in server.snapshot()]
            self.assertTrue(helpers.wait_until(
                lambda: any("capture started" in x["message"] for x in logs()), 10),
                server.snapshot())
        self.assertEqual((server.errors, server.requests), ([], ["GET /logs HTTP/1.1"]))
        msgs = server.snapshot()
        self.assertEqual({op for op, _ in msgs}, {1})
        lines = [json.loads(m) for _, m in msgs]
        for x in lines:
            self.assertEqual(sorted(x), ["level", "message", "time"], x)
        started = [x for x in lines if "capture started" in x["message"]]
        self.assertEqual(len(started), 1, lines)
        self.assertEqual(started[0]["level"], "info")
        self.assertIn(started[0]["message"], run.stderr_text(), "the same line as on stderr")
        # Written after SIGINT and flushed before exit: the stop line and the output summary.
        msgs_text = [x["message"] for x in lines]
        self.assertIn("received SIGINT, stopping", msgs_text)
        self.assertTrue(any(x.startswith("output summary: ") for x in msgs_text), msgs_text)

    def test_13_ws_server_starts_after_ecapture(self):
        port = helpers.free_port()
        url = f"ws://127.0.0.1:{port}/late"
        with self.run_ecapture(["tls", "--format", "json", "--eventaddr", url]) as run:
            p1, l1, _, _ = self.curl(self.gz_file(200)[0], "--http1.1")  # nobody listens yet
            time.sleep(2.0)
            server = WsServer(self, port=port)
            self.assertTrue(helpers.wait_until(lambda: server.requests, 5),
                            "ecapture did not reconnect within 5 s")
            path, _ = self.gz_file(200)
            p2, l2, _, _ = self.curl(path, "--http1.1")

            def pids():
                return {json.loads(m)["pid"] for _, m in server.snapshot()}
            helpers.wait_until(lambda: {p1, p2} <= pids(), 10)
        self.assertEqual((server.errors, server.requests), ([], ["GET /late HTTP/1.1"]))
        events = [json.loads(m) for _, m in server.snapshot()]
        self.check_json_request(events, p2, l2, path)
        # What was queued while the server was away is delivered once it is up.
        self.assertEqual(len([e for e in events if e["pid"] == p1 and e["src_port"] == l1]), 1)
        msgs, _, dropped = self.ws_summary(run, "json", url)
        self.assertEqual((msgs, dropped), (len(events), 0))

    def test_14_paused_ws_consumer_does_not_stop_stdout(self):
        server = WsServer(self, paused=True)
        url = f"ws://127.0.0.1:{server.port}/slow"
        path = "/" + helpers.rand_token(12) + ".bin"
        big = helpers.rand_printable(12 * 1024 * 1024)
        self.nginx.write_file(path[1:], big)
        # A 64 MiB ring, as in test_07: the paused consumer is what is measured.
        with self.run_ecapture(["tls", "--mapsize", "16384", "--eventaddr", "-", "--eventaddr",
                                url]) as run:
            self.assertTrue(helpers.wait_until(lambda: server.requests, 5))
            pids = [self.curl(path, "--http1.1")[0] for _ in range(3)]
            run.settle(quiet=1.0, timeout=20)
        blocks = run.blocks()
        for pid in pids:
            recv = b"".join(b.payload for b in select(blocks, pid=pid, direction="READ"))
            _, body = helpers.split_http(recv)
            self.assertEqual(len(body), len(big), f"curl {pid}: stdout got the whole body; "
                             f"capture summary (events, bytes, lost): {run.summary()}")
            self.assertEqual(body, big)
        _, _, dropped = self.ws_summary(run, "text", url)
        self.assertGreater(dropped, 0, "the paused consumer must have cost drops")
        err = run.stderr_text()
        sm = re.search(r"text stdout: messages=(\d+) bytes=(\d+) dropped=0", err)
        self.assertIsNotNone(sm, err[-3000:])
        self.assertEqual(int(sm.group(2)), len(run.stdout_bytes()))
        self.assertLess(run.stop_seconds, 5.0, "a stalled peer must not hold the exit")

    def test_15_ecaptureq_heartbeat_every_15s(self):
        pb = load_ecaptureq_pb2(self.tmp)
        port = helpers.free_port()
        with self.run_ecapture(["tls", "--ecaptureq", f"ws://127.0.0.1:{port}/"]):
            # Connect well after the server started: the 15 s count from each client's connect.
            time.sleep(3.0)
            ws = WsClient(self, port)
            t0 = time.monotonic()
            first = pb.LogEntry()
            first.ParseFromString(ws.recv())
            self.assertEqual(first.log_type, pb.LOG_TYPE_HEARTBEAT)
            self.assertEqual(first.heartbeat_payload.count, 1)
            second = None
            while second is None:
                left = 17.0 - (time.monotonic() - t0)
                self.assertGreater(left, 0, "no second heartbeat within 17 s")
                ws.sock.settimeout(left)
                raw = ws.recv()
                self.assertIsNotNone(raw, "ecaptureq closed the stream")
                e = pb.LogEntry()
                e.ParseFromString(raw)
                if e.log_type == pb.LOG_TYPE_HEARTBEAT:
                    second = e
            waited = time.monotonic() - t0
        hb1, hb2 = first.heartbeat_payload, second.heartbeat_payload
        self.assertEqual((hb2.count, hb2.message), (hb1.count + 1, f"heartbeat:{hb1.count + 1}"))
        self.assertTrue(14 <= hb2.timestamp - hb1.timestamp <= 16,
                        (hb1.timestamp, hb2.timestamp))
        self.assertTrue(14.0 <= waited <= 16.5, waited)

    def test_16_ws_bad_urls_are_one_line_errors(self):
        cases = [
            (["--eventaddr", "wss://127.0.0.1:9/x"],
             "ecapture: --eventaddr wss://127.0.0.1:9/x: wss:// (TLS) is not supported: use "
             "ws://host:port/path or tcp://host:port"),
            (["--logaddr", "wss://127.0.0.1:9/x"],
             "ecapture: -l/--logaddr wss://127.0.0.1:9/x: wss:// (TLS) is not supported: use "
             "ws://host:port/path or tcp://host:port"),
            (["--eventaddr", "ws://127.0.0.1:99999/"],
             "ecapture: --eventaddr ws://127.0.0.1:99999/: port 99999 is not in 1..65535"),
            (["--logaddr", "ws://127.0.0.1/"],
             "ecapture: -l/--logaddr ws://127.0.0.1/: missing port (scheme://host:port)"),
        ]
        for args, want in cases:
            p = self.procs.popen([helpers.BINARY, "tls"] + args, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=20)
            self.assertEqual((p.returncode, out, err.decode()), (1, b"", want + "\n"), args)

if __name__ == "__main__":
    unittest.main()
