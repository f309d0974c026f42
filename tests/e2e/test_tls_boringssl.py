"""`ecapture tls` on BoringSSL (Debian's android-libboringssl, driven by its `bssl-tool client`).

Text: the client's exact request and nginx's exact response, with bssl-tool's pid, its own local
port (helpers.tcp_local_ports, while the connection is open) and nginx's port. Keys: tshark decrypts an
independent capture with our key log, for TLS 1.2 and TLS 1.3; pcapng: tshark decrypts our file
alone.
"""
import os
import select
import subprocess
import time
import unittest

import helpers
from helpers import ep, select as select_blocks
from test_tls_keys import Sniffer, decrypted_streams
from test_tls_pcap import tshark_fields
from test_tls_text import TlsText

ANDROID_LIBSSL = "/usr/lib/x86_64-linux-gnu/android/libssl.so.0"
BSSL_TOOL = "/usr/bin/bssl-tool"
TLS13_LABELS = ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"]


class BoringSsl(helpers.E2ETestCase):
    setUpClass = classmethod(TlsText.setUpClass.__func__)
    new_file = TlsText.new_file
    assert_response = TlsText.assert_response

    def setUp(self):
        super().setUp()
        for f in (ANDROID_LIBSSL, BSSL_TOOL):
            if not os.path.exists(f):
                self.skipTest(f"{f} missing (scripts/setup.sh installs android-libboringssl and "
                              "android-boringssl)")

    def start_client(self, version):
        """bssl-tool client, held by `sh` until told to go: its pid is known before it connects."""
        return self.procs.popen(["/bin/sh", "-c", 'read go; exec "$@"', "sh", BSSL_TOOL, "client",
                                 "-connect", f"127.0.0.1:{self.port}", "-root-certs", self.cert,
                                 "-min-version", version, "-max-version", version],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def fetch(self, client, path, body):
        """Sends one keep-alive GET through `client`, reads the whole response from its stdout,
        notes its local port while the connection is open, then ends it. Returns
        (request bytes, response bytes, local port)."""
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                   "User-Agent: bssl-e2e\r\n\r\n").encode()
        client.stdin.write(b"go\n")
        client.stdin.flush()
        # bssl-tool sends stdin as it comes; wait for the handshake before writing the request
        # so that it goes out as one SSL_write.
        deadline = time.time() + 20
        err = b""
        while b"Connected." not in err and time.time() < deadline:
            ready, _, _ = select.select([client.stderr], [], [], 0.2)
            if ready:
                chunk = os.read(client.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
        self.assertIn(b"Connected.", err, f"bssl-tool did not connect: {err!r}")
        while b"Cipher:" not in err and time.time() < deadline:
            ready, _, _ = select.select([client.stderr], [], [], 0.2)
            if ready:
                err += os.read(client.stderr.fileno(), 4096)
        client.stdin.write(request)
        client.stdin.flush()
        response = b""
        while not response.endswith(body) and time.time() < deadline:
            ready, _, _ = select.select([client.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(client.stdout.fileno(), 65536)
                if not chunk:
                    break
                response += chunk
        self.assert_response(response, body, "bssl-tool's stdout")
        ports = helpers.tcp_local_ports(client.pid, self.port)
        self.assertEqual(len(ports), 1, f"bssl-tool pid {client.pid} sockets to {self.port}")
        client.stdin.close()
        client.wait(timeout=20)
        return request, response, ports.pop()

    def test_01_text_exact_bytes_pid_and_ports(self):
        path, body = self.new_file(40)
        client = self.start_client("tls1.3")
        with self.run_ecapture(["tls", "--libssl", ANDROID_LIBSSL, "--pid",
                                str(client.pid)]) as run:
            request, response, lport = self.fetch(client, path, body)
            run.settle()
        blocks = run.blocks()
        self.assertTrue(blocks, run.describe())
        for b in blocks:
            self.assertEqual((b.pid, b.comm), (client.pid, "bssl-tool"), helpers.summarize(blocks))
            want = ((ep(lport), ep(self.port)) if b.direction == "WRITE"
                    else (ep(self.port), ep(lport)))
            self.assertEqual((b.src, b.dst), want, helpers.summarize(blocks))
        writes = select_blocks(blocks, direction="WRITE")
        reads = select_blocks(blocks, direction="READ")
        self.assertEqual(helpers.stream(writes, client.pid, "WRITE"), request,
                         helpers.summarize(blocks))
        self.assertEqual(helpers.stream(reads, client.pid, "READ"), response,
                         helpers.summarize(blocks))

    def keylog_run(self, version):
        path, body = self.new_file(40)
        keys = os.path.join(self.tmp, "keys.log")
        pcap = os.path.join(self.tmp, "indep.pcapng")
        sniffer = Sniffer(self, self.procs, pcap, self.port)
        client = self.start_client(version)
        with self.run_ecapture(["tls", "--libssl", ANDROID_LIBSSL, "-m", "keylog", "-k", keys,
                                "--pid", str(client.pid)]) as run:
            request, _, _ = self.fetch(client, path, body)
            ok = helpers.wait_until(lambda: os.path.exists(keys) and os.path.getsize(keys) > 0, 5)
            self.assertTrue(ok, f"no keys written.\n{run.describe()}")
            run.settle()
        sniffer.stop()
        self.assertIn("(checked against the library's code: s3, client_random)", run.stderr_text())
        with open(keys) as f:
            text = f.read()
        streams = decrypted_streams(pcap, keys)
        self.assertIn(request, streams, f"tshark could not decrypt the request with:\n{text}")
        self.assertIn(body, streams, f"tshark could not decrypt the response with:\n{text}")
        return text

    def test_02_keylog_tls13_decrypts(self):
        text = self.keylog_run("tls1.3")
        lines = [line.split() for line in text.splitlines()]
        self.assertEqual([l[0] for l in lines], TLS13_LABELS, text)
        self.assertEqual(len({l[1] for l in lines}), 1, text)  # one client random
        self.assertTrue(all(len(l[2]) in (64, 96) for l in lines), text)

    def test_03_keylog_tls12_decrypts(self):
        text = self.keylog_run("tls1.2")
        lines = [line.split() for line in text.splitlines()]
        self.assertEqual(len(lines), 1, text)
        self.assertEqual((lines[0][0], len(lines[0][1]), len(lines[0][2])),
                         ("CLIENT_RANDOM", 64, 96), text)

    def test_04_pcapng_decrypts_alone(self):
        path, body = self.new_file(40)
        out = os.path.join(self.tmp, "bssl.pcapng")
        client = self.start_client("tls1.3")
        with self.run_ecapture(["tls", "--libssl", ANDROID_LIBSSL, "-m", "pcap", "-i", "lo",
                                "-w", out, "-k", os.path.join(self.tmp, "k.log"), "tcp", "port",
                                str(self.port)]) as run:
            request, _, lport = self.fetch(client, path, body)
            run.settle(quiet=1.5)
        reqs = tshark_fields(out, ["tcp.srcport", "http.request.uri", "frame.comment"],
                             "http.request")
        self.assertEqual(reqs, [[str(lport), path, f"pid={client.pid} comm=bssl-tool"]],
                         run.describe())
        bodies = tshark_fields(out, ["tcp.srcport", "http.file_data"], "http.response")
        self.assertEqual(len(bodies), 1, bodies)
        self.assertEqual(bodies[0][0], str(self.port))
        self.assertIn(bodies[0][1], (body.decode(), body.hex()))
        self.assertTrue(request.startswith(f"GET {path} ".encode()))
    def server_keylog_run(self, curl_flag, version_text):
        """bssl-tool as the server (its -www page describes the connection), curl as the client,
        `ecapture tls -m keylog --pid <server>`: the server side's keys decrypt the exchange."""
        port = helpers.free_port()
        server = self.procs.popen([BSSL_TOOL, "server", "-accept", str(port), "-www", "-loop",
                                   "-key", self.key, "-cert", self.cert],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(helpers.wait_until(lambda: port in helpers.listening_ports(), 10),
                        "bssl-tool server did not listen")
        keys = os.path.join(self.tmp, "keys.log")
        pcap = os.path.join(self.tmp, "indep.pcapng")
        sniffer = Sniffer(self, self.procs, pcap, port)
        path = "/" + helpers.rand_token(12)
        with self.run_ecapture(["tls", "--libssl", ANDROID_LIBSSL, "-m", "keylog", "-k", keys,
                                "--pid", str(server.pid)]) as run:
            r = subprocess.run(["curl", "-sS", "-k", *curl_flag, f"https://127.0.0.1:{port}{path}"],
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"Version: {version_text}".encode(), r.stdout)
            ok = helpers.wait_until(lambda: os.path.exists(keys) and os.path.getsize(keys) > 0, 5)
            self.assertTrue(ok, f"no keys written.\n{run.describe()}")
            run.settle()
        sniffer.stop()
        self.assertIn(f"pid={server.pid} comm=bssl-tool", run.stderr_text())
        with open(keys) as f:
            text = f.read()
        streams = decrypted_streams(pcap, keys)
        self.assertIn(f"GET {path} HTTP/1.1".encode(), streams, text)
        self.assertIn(f"Version: {version_text}".encode(), streams, text)
        return text

    def test_05_server_keylog_tls13(self):
        text = self.server_keylog_run(["--tlsv1.3"], "TLSv1.3")
        self.assertEqual([l.split()[0] for l in text.splitlines()], TLS13_LABELS, text)

    def test_06_server_keylog_tls12(self):
        text = self.server_keylog_run(["--tls-max", "1.2"], "TLSv1.2")
        self.assertEqual([l.split()[0] for l in text.splitlines()], ["CLIENT_RANDOM"], text)


if __name__ == "__main__":
    unittest.main()
