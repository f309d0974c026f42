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
        with self.run_ecapture(["tls", "--eventaddr", out, "--eventaddr",
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


if __name__ == "__main__":
    unittest.main()
