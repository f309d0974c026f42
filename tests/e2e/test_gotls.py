"""`ecapture gotls`: Go crypto/tls programs built here with Debian's Go (default cgo/dynamic,
-ldflags='-s -w', -buildmode=pie, CGO_ENABLED=0 static), plus Debian's stripped /usr/bin/hey.

The test program (tests/fixtures/gotls/main.go) runs an HTTPS server and client in one process
(or either side alone) and POSTs a random body, answered with a random body. Every assertion is on
exact bytes, the program's pid and the server's port.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import helpers
from helpers import ep, select
from test_tls_keys import Sniffer, decrypted_streams

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "gotls")
VARIANTS = {
    "default": ([], {}),
    "stripped": (["-ldflags=-s -w"], {}),
    "pie": (["-buildmode=pie"], {}),
    "static": ([], {"CGO_ENABLED": "0"}),
}


def pattern(n):
    return bytes(ord("a") + i % 26 for i in range(n))


class GoTls(helpers.E2ETestCase):
    bins = {}
    build_dir = None

    @classmethod
    def setUpClass(cls):
        if helpers.skip_reason() or shutil.which("go") is None:
            return
        cls.build_dir = tempfile.mkdtemp(prefix="ecap-gotls-")
        cache = os.path.join("/tmp", "ecap-e2e-gocache")
        for name, (flags, extra) in list(VARIANTS.items()) + [("nocrypto", ([], {}))]:
            src = os.path.join(FIXTURES, "nocrypto.go" if name == "nocrypto" else "main.go")
            out = os.path.join(cls.build_dir, name)
            env = dict(os.environ, GOCACHE=cache, HOME=cls.build_dir, GO111MODULE="off", **extra)
            r = subprocess.run(["go", "build"] + flags + ["-o", out, src], env=env,
                               capture_output=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"go build {name}: {r.stderr.decode(errors='replace')}")
            cls.bins[name] = out

    @classmethod
    def tearDownClass(cls):
        if cls.build_dir:
            shutil.rmtree(cls.build_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        if shutil.which("go") is None:
            self.fail("go is not installed (scripts/setup.sh installs golang-go)")

    # -- helpers -------------------------------------------------------------------------------

    def run_program(self, binary, *args, timeout=120):
        """Runs the test program to completion; returns (pid, server port, stdout)."""
        p = self.procs.popen([binary] + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=timeout)
        self.assertEqual(p.returncode, 0, f"{binary} {args}: {err!r}")
        port = int(out.split(b"LISTEN ", 1)[1].split(b"\n", 1)[0])
        return p.pid, port, out

    def assert_both_directions(self, blocks, pid, port, request, response):
        """The request body leaves the client (WRITE to the port) and reaches the server (READ at
        the port); the response the other way."""
        srv = ep(port)

        def joined(direction, **where):
            sel = [b for b in select(blocks, pid=pid, direction=direction)
                   if all(getattr(b, k) == v for k, v in where.items())]
            return b"".join(b.payload for b in sel)

        info = helpers.summarize(blocks)
        self.assertIn(request, joined("WRITE", dst=srv), f"client write missing:\n{info}")
        self.assertIn(request, joined("READ", dst=srv), f"server read missing:\n{info}")
        self.assertIn(response, joined("WRITE", src=srv), f"server write missing:\n{info}")
        self.assertIn(response, joined("READ", src=srv), f"client read missing:\n{info}")
        for b in select(blocks, pid=pid):
            self.assertGreaterEqual(b.fd, 3, b.header())

    def text_run(self, variant, *prog_args, request=None, response=None):
        req = request or helpers.rand_token(24).encode()
        resp = response or helpers.rand_token(24).encode()
        args = list(prog_args)
        if request is None:
            args += ["-body", req.decode()]
        if response is None:
            args += ["-resp", resp.decode()]
        with self.run_ecapture(["gotls", "-m", "text", "-e", self.bins[variant]]) as run:
            pid, port, out = self.run_program(self.bins[variant], *args)
            run.settle(quiet=0.7, timeout=15)
        return run, pid, port, req, resp, out

    # -- text ----------------------------------------------------------------------------------

    def check_text_variant(self, variant):
        for proto in (["-h1"], []):
            with self.subTest(variant=variant, proto=proto or "h2"):
                run, pid, port, req, resp, out = self.text_run(variant, *proto)
                self.assert_both_directions(run.blocks(), pid, port, req, resp)
                # The client's own local ports (printed by the program) are the tuples' other end.
                cports = {int(x) for x in re.findall(rb"CLIENTPORT (\d+)", out)}
                self.assertTrue(cports, out)
                for b in select(run.blocks(), pid=pid):
                    peer = b.src if b.dst == ep(port) else b.dst
                    self.assertIn(peer, {ep(p) for p in cports}, b.header())
                self.assertIn("functions from " + (".gopclntab" if variant == "stripped"
                                                   else ".symtab"), run.stderr_text())

    def test_01_text_default(self):
        self.check_text_variant("default")

    def test_02_text_stripped(self):
        self.check_text_variant("stripped")
        # every program of the runs is gone once ecapture exited (other sessions' programs may
        # come and go meanwhile: only ours are counted, by name)
        r = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, timeout=30)
        names = [p.get("name", "") for p in json.loads(r.stdout or b"[]")]
        self.assertEqual([n for n in names if n.startswith("probe_gotls")], [])

    def test_03_text_pie(self):
        self.check_text_variant("pie")

    def test_04_text_static(self):
        self.check_text_variant("static")

    def test_05_text_2mib_body_complete(self):
        size = 2 * 1024 * 1024
        body = pattern(size)
        run, pid, port, _, resp, _ = self.text_run("static", "-h1", "-size", str(size),
                                                request=body)
        blocks = run.blocks()
        srv = ep(port)
        sent = b"".join(b.payload for b in select(blocks, pid=pid, direction="WRITE")
                        if b.dst == srv)
        got = b"".join(b.payload for b in select(blocks, pid=pid, direction="READ")
                       if b.dst == srv)
        # Exactly the request: its head, then the body once (an entry probe re-run by the
        # goroutine stack growth would add a copy of a write).
        for what, stream_ in (("written", sent), ("read", got)):
            head_end = stream_.find(b"\r\n\r\n") + 4
            self.assertTrue(stream_.startswith(b"POST / HTTP/1.1\r\n"), stream_[:100])
            self.assertEqual(len(stream_) - head_end, size,
                             f"{len(stream_)} bytes {what}\n{helpers.summarize(blocks)}")
            self.assertTrue(stream_[head_end:] == body, f"body bytes {what} differ")
        self.assertEqual(run.summary()[2], 0, run.stderr_text()[-3000:])

    def test_05b_text_pid_filter_and_running_process(self):
        # The server runs before ecapture starts (uprobes reach running processes) and is the
        # only pid captured; the client, the same binary, is not.
        binary = self.bins["default"]
        req, resp = helpers.rand_token(24), helpers.rand_token(24)
        server = self.procs.popen([binary, "-mode", "server", "-h1", "-resp", resp],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        port = int(server.stdout.readline().split()[1])
        # No -e: the program is the executable of --pid.
        with self.run_ecapture(["gotls", "--pid", str(server.pid)]) as run:
            self.run_client(binary, port, req, [])
            run.settle(quiet=0.7, timeout=15)
        self.assertIn(f"go program: {binary} (", run.stderr_text())
        blocks = run.blocks()
        info = helpers.summarize(blocks)
        self.assertEqual({b.pid for b in blocks}, {server.pid}, info)
        read = b"".join(b.payload for b in select(blocks, direction="READ"))
        written = b"".join(b.payload for b in select(blocks, direction="WRITE"))
        self.assertIn(req.encode(), read, info)
        self.assertIn(resp.encode(), written, info)
        for b in blocks:
            self.assertEqual(b.src if b.direction == "WRITE" else b.dst, ep(port), b.header())

    # -- keylog --------------------------------------------------------------------------------

    def keylog_run(self, variant, tls12):
        keylog = os.path.join(self.tmp, f"keys-{variant}.log")
        pcap = os.path.join(self.tmp, f"lo-{variant}.pcapng")
        req, resp = helpers.rand_token(24), helpers.rand_token(24)
        binary = self.bins[variant]
        extra = ["-tls12"] if tls12 else []
        with self.run_ecapture(["gotls", "-m", "keylog", "-e", binary, "-k", keylog]) as run:
            server = self.procs.popen([binary, "-mode", "server", "-resp", resp] + extra,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            port = int(server.stdout.readline().split()[1])
            sniffer = Sniffer(self, self.procs, pcap, port)
            # tshark reports "Capturing on" a moment before packets are really recorded; a Go
            # handshake is fast enough to slip through that gap.
            time.sleep(1.5)
            self.run_client(binary, port, req, extra)
            sniffer.stop()
            run.settle(quiet=0.5, timeout=5)
        with open(keylog) as f:
            text = f.read()
        labels = {line.split()[0] for line in text.splitlines() if line}
        if tls12:
            self.assertEqual(labels, {"CLIENT_RANDOM"}, text)
        else:
            self.assertEqual(labels, {"CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                      "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                      "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"}, text)
        streams = decrypted_streams(pcap, keylog)
        packets = subprocess.run(["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap)], capture_output=True,
                                 timeout=60).stdout.decode(errors="replace")
        self.assertIn(req.encode(), streams, f"tshark could not decrypt the request with:\n{text}"
                      f"\npackets:\n{packets[-3000:]}")
        self.assertIn(resp.encode(), streams, f"tshark could not decrypt the response:\n{text}")

    def run_client(self, binary, port, req, extra):
        c = self.procs.popen([binary, "-mode", "client", "-url", f"https://127.0.0.1:{port}/",
                              "-body", req, "-h1"] + extra,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = c.communicate(timeout=60)
        self.assertEqual(c.returncode, 0, err)

    def test_06_keylog_tls13(self):
        for variant in ("default", "stripped", "pie", "static"):
            with self.subTest(variant=variant):
                self.keylog_run(variant, tls12=False)

    def test_07_keylog_tls12(self):
        for variant in ("default", "stripped", "pie", "static"):
            with self.subTest(variant=variant):
                self.keylog_run(variant, tls12=True)

    # -- pcap --------------------------------------------------------------------------------------

    def test_10_pcapng_decrypts_alone(self):
        pcap = os.path.join(self.tmp, "gotls.pcapng")
        req, resp = helpers.rand_token(24), helpers.rand_token(24)
        with self.run_ecapture(["gotls", "-m", "pcap", "-e", self.bins["stripped"], "-i", "lo",
                                "-w", pcap, "-k", os.path.join(self.tmp, "keys.log"),
                                "tcp"]) as run:
            pid, port, _ = self.run_program(self.bins["stripped"], "-h1", "-body", req,
                                            "-resp", resp)

            def flushed():  # packets are held 0.5 s, then flushed each second
                r = subprocess.run(["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap),
                                    "-Y", f"http && tcp.port == {port}"],
                                   capture_output=True, timeout=60)
                return b"HTTP/1.1 200 OK" in r.stdout
            helpers.wait_until(flushed, 10, 0.2)
        r = subprocess.run(["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap), "-q", "-z",
                            "follow,tls,ascii,0"],
                           capture_output=True, timeout=60)
        self.assertIn(f"POST / HTTP/1.1".encode(), r.stdout, run.stderr_text()[-3000:])
        self.assertIn(req.encode(), r.stdout)
        self.assertIn(resp.encode(), r.stdout)
        r = subprocess.run(["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap), "-Y",
                            f"http && tcp.port == {port}"],
                           capture_output=True, timeout=60)
        self.assertIn(b"POST / HTTP/1.1", r.stdout)
        self.assertIn(b"HTTP/1.1 200 OK", r.stdout)

    # -- hey: a stripped Go binary nobody here built ---------------------------------------------

    def test_09_hey_text(self):
        hey = shutil.which("hey")
        if hey is None:
            self.fail("/usr/bin/hey is not installed (scripts/setup.sh installs it)")
        cert, key = helpers.make_cert(self.tmp)
        nginx = helpers.Nginx(self.tmp, cert, key).start(self.procs)
        body = helpers.rand_token(32)
        page = helpers.rand_token(40)
        nginx.write_file("page.txt", page.encode())
        with self.run_ecapture(["gotls", "-m", "text", "-e", hey]) as run:
            for args in (["-m", "POST", "-d", body, f"{nginx.url}/upload"],
                         [f"{nginx.url}/page.txt"]):
                p = self.procs.popen([hey, "-n", "1", "-c", "1", "-disable-compression"] + args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                out, err = p.communicate(timeout=60)
                self.assertEqual(p.returncode, 0, err)
                self.assertIn(b"[200]\t1 responses", out)
                pids = getattr(self, "hey_pids", [])
                pids.append(p.pid)
                self.hey_pids = pids
            run.settle(quiet=0.7, timeout=15)
        self.assertIn("functions from .gopclntab", run.stderr_text())
        blocks = run.blocks()
        srv = ep(nginx.port)
        info = helpers.summarize(blocks)
        post, get = self.hey_pids
        sent = b"".join(b.payload for b in select(blocks, pid=post, direction="WRITE")
                        if b.dst == srv)
        self.assertIn(b"POST /upload HTTP/1.1\r\n", sent, info)
        self.assertIn(body.encode(), sent, info)
        got = b"".join(b.payload for b in select(blocks, pid=post, direction="READ")
                       if b.src == srv)
        self.assertIn(b"uploaded\n", got, info)
        got = b"".join(b.payload for b in select(blocks, pid=get, direction="READ")
                       if b.src == srv)
        self.assertIn(page.encode(), got, info)
        for b in select(blocks, pid=post) + select(blocks, pid=get):
            self.assertEqual(b.comm, "hey", b.header())

    # -- HTTP API ------------------------------------------------------------------------------

    def test_11_api_reload_to_another_binary(self):
        from test_api import api
        port = helpers.free_port()
        with self.run_ecapture(["gotls", "-e", self.bins["default"], "--listen",
                                f"127.0.0.1:{port}"]) as run:
            # a C binary is refused and the running capture stays as it was
            code, body = api(port, "POST", "/gotls", {"elf_path": "/bin/true"})
            self.assertNotEqual((code, body["code"]), (200, 0), body)
            self.assertIn("is not a Go program", body["msg"], body)
            code, body = api(port, "POST", "/gotls", {"elf_path": self.bins["static"],
                                                      "capture_mode": "text"})
            self.assertEqual((code, body["code"], body["module_type"]), (200, 0, "gotls"),
                             f"{body}\n{run.describe()}")
            req, resp = helpers.rand_token(24).encode(), helpers.rand_token(24).encode()
            pid, sport, _ = self.run_program(self.bins["static"], "-h1", "-body", req.decode(),
                                             "-resp", resp.decode())
            run.settle(quiet=0.7, timeout=15)
        self.assert_both_directions(run.blocks(), pid, sport, req, resp)

    # -- host-wide (no -e) ----------------------------------------------------------------------

    def start_server(self, variant):
        resp = helpers.rand_token(24)
        server = self.procs.popen([self.bins[variant], "-mode", "server", "-h1", "-resp", resp],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        port = int(server.stdout.readline().split()[1])
        return server.pid, port, resp.encode()

    def client_exchange(self, variant, port):
        """A client of `variant` started now; returns (pid, its local port, request)."""
        req = helpers.rand_token(24)
        c = self.procs.popen([self.bins[variant], "-mode", "client", "-h1", "-url",
                              f"https://127.0.0.1:{port}/", "-body", req],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = c.communicate(timeout=60)
        self.assertEqual(c.returncode, 0, err)
        cports = [int(x) for x in re.findall(rb"CLIENTPORT (\d+)", out)]
        self.assertEqual(len(cports), 1, out)
        return c.pid, cports[0], req.encode()

    def assert_exchange_once(self, blocks, pid, lport, port, request, response):
        """The client's WRITE stream holds the request once, its READ stream the response once,
        every block with its pid and exact 4-tuple; the server read the request once."""
        info = helpers.summarize(blocks)
        mine = select(blocks, pid=pid)
        self.assertTrue(mine, f"nothing of pid {pid}:\n{info}")
        self.assertEqual(helpers.stream(blocks, pid, "WRITE").count(request), 1, info)
        self.assertEqual(helpers.stream(blocks, pid, "READ").count(response), 1, info)
        for b in mine:
            want = (ep(lport), ep(port)) if b.direction == "WRITE" else (ep(port), ep(lport))
            self.assertEqual((b.src, b.dst), want, b.header())
        server_reads = b"".join(b.payload for b in select(blocks, direction="READ")
                                if b.dst == ep(port) and b.src == ep(lport))
        self.assertEqual(server_reads.count(request), 1, info)

    def test_12_host_wide_two_binaries_without_e(self):
        # Two different Go programs run before ecapture: both files are hooked, once each; their
        # clients, started afterwards, are captured through the same file's hooks.
        servers = {v: self.start_server(v) for v in ("default", "static")}
        with self.run_ecapture(["gotls"]) as run:
            owned = helpers.owned_bpf_ids(run.pid)
            done = {v: self.client_exchange(v, servers[v][1]) for v in servers}
            run.settle(quiet=0.7, timeout=15)
        err = run.stderr_text()
        for v in servers:
            self.assertEqual(err.count(f"gotls: target {self.bins[v]}: Go crypto/tls, go1."), 1,
                             run.describe())
        blocks = run.blocks()
        for v, (spid, port, resp) in servers.items():
            with self.subTest(variant=v):
                pid, lport, req = done[v]
                self.assert_exchange_once(blocks, pid, lport, port, req, resp)
                self.assertEqual({b.pid for b in blocks if b.src == ep(port) or b.dst == ep(port)},
                                 {pid, spid}, helpers.summarize(blocks))
        helpers.assert_bpf_released(self, owned)

    def test_13_host_wide_status_reports_each_program(self):
        from test_api import api
        spid, port, resp = self.start_server("stripped")
        api_port = helpers.free_port()
        with self.run_ecapture(["gotls", "--listen", f"127.0.0.1:{api_port}"]) as run:
            code, status = api(api_port, "GET", "/status")
        self.assertEqual(code, 200, status)
        mine = [e for e in status["data"]["target_report"] if e.get("path") == self.bins["stripped"]]
        self.assertEqual(len(mine), 1, status)
        self.assertEqual(mine[0]["functions_from"], ".gopclntab", mine[0])
        self.assertEqual(mine[0]["processes"], 1, mine[0])
        self.assertTrue(mine[0]["version"].startswith("go1."), mine[0])

    def test_14_programs_started_after_ecapture_then_released(self):
        # Two different Go programs no process runs when ecapture starts, started together
        # afterwards, each making one request and exiting: both captured, each with its pid;
        # once they exited their hooks are released.
        from test_api import api
        api_port = helpers.free_port()
        with self.run_ecapture(["gotls", "--listen", f"127.0.0.1:{api_port}"]) as run:
            owned = helpers.owned_bpf_ids(run.pid)
            started = {}
            for v in ("pie", "static"):
                req, resp = helpers.rand_token(24).encode(), helpers.rand_token(24).encode()
                p = self.procs.popen([self.bins[v], "-h1", "-body", req.decode(), "-resp",
                                      resp.decode()], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
                started[v] = (p, req, resp)
            done = {}
            for v, (p, req, resp) in started.items():
                out, err = p.communicate(timeout=60)
                self.assertEqual(p.returncode, 0, err)
                port = int(out.split(b"LISTEN ", 1)[1].split(b"\n", 1)[0])
                done[v] = (p.pid, port, req, resp)
            run.settle(quiet=0.7, timeout=15)

            def ours():
                _, status = api(api_port, "GET", "/status")
                return [e for e in status["data"]["target_report"]
                        if e.get("host_path") in (self.bins["pie"], self.bins["static"])]
            released = helpers.wait_until(lambda: not ours(), 10)
            self.assertTrue(released, ours())
        blocks = run.blocks()
        for v, (pid, port, req, resp) in done.items():
            with self.subTest(variant=v):
                self.assert_both_directions(blocks, pid, port, req, resp)
        self.assertIn("gotls: capture started (host-wide, ", run.stderr_text())
        helpers.assert_bpf_released(self, owned)

    # -- bad input -----------------------------------------------------------------------------

    def bad(self, args, fragment):
        r = subprocess.run([helpers.BINARY, "gotls"] + args, capture_output=True, timeout=60)
        err = r.stderr.decode(errors="replace")
        self.assertNotEqual(r.returncode, 0, err)
        self.assertIn(fragment, err)
        self.assertTrue(err.startswith("ecapture: "), err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_08_bad_input(self):
        self.bad(["-e", "/bin/true"], "is not a Go program")
        self.bad(["-e", self.bins["nocrypto"]],
                 "has no crypto/tls.(*Conn).writeRecordLocked: it does not use crypto/tls")
        self.bad(["-e", "/no/such/go-program"], "/no/such/go-program")
        self.bad(["--pid", "999999999"], "--pid 999999999: no such process")
        self.bad(["-e", self.bins["default"], "-m", "keys"], "invalid value 'keys'")


if __name__ == "__main__":
    unittest.main()
