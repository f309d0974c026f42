"""`ecapture tls -m pcap`: a pcapng that tshark decrypts with no other input.

curl talks TLS to nginx on port P while other traffic runs on port Q; the filter `tcp port P`
must keep only P, every packet once, with wall-clock timestamps, curl's pid in the comments and
the secrets embedded (Decryption Secrets Blocks).
"""
import http.server
import os
import signal
import subprocess
import threading
import time
import unittest

import helpers
from test_tls_text import TlsText


def tshark_fields(pcap, fields, display_filter=None, extra=()):
    args = ["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap), *extra, "-T", "fields",
            "-E", "separator=|"]
    if display_filter:
        args += ["-Y", display_filter]
    for f in fields:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, timeout=60)
    return [line.split("|") for line in r.stdout.decode(errors="replace").splitlines()]


def pcap_has_response_and_fin(pcap, client_port):
    if not os.path.exists(pcap):
        return False
    return (len(tshark_fields(pcap, ["http.file_data"], "http.response")) == 1 and
            tshark_fields(pcap, ["tcp.srcport"], f"tcp.srcport == {client_port} && "
                          f"tcp.flags.fin == 1") != [])


class TlsPcap(helpers.E2ETestCase):
    setUpClass = classmethod(TlsText.setUpClass.__func__)
    new_file = TlsText.new_file
    curl_args = TlsText.curl_args
    finish_curl = TlsText.finish_curl

    def other_traffic_server(self):
        """A plain HTTP server on another loopback port (traffic the filter must drop)."""
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv.server_address[1]

    def capture(self, tls_flag):
        path, body = self.new_file(40)
        pcap = os.path.join(self.tmp, "out.pcapng")
        keys = os.path.join(self.tmp, "keys.log")
        other = self.other_traffic_server()
        out = os.path.join(self.tmp, "body.out")
        t0 = time.time()
        args = ["tls", "-m", "pcap", "-i", "lo", "-w", pcap, "-k", keys, "tcp", "port",
                str(self.port)]
        with self.run_ecapture(args) as run:
            p = self.procs.popen(self.curl_args(path, out, tls_flag), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            lport, _ = self.finish_curl(p)
            subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{other}/"],
                           timeout=30, check=True)
            # Packets are held 0.5 s so that their secrets go first, then flushed each second:
            # wait until the response and curl's last packet (its FIN) are in the file.
            helpers.wait_until(lambda: pcap_has_response_and_fin(pcap, lport), 10, 0.2)
        t1 = time.time()
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        return pcap, p.pid, lport, other, path, body, t0, t1, run

    def check(self, tls_flag):
        pcap, pid, lport, other, path, body, t0, t1, run = self.capture(tls_flag)
        info = subprocess.run(["capinfos", pcap], capture_output=True, timeout=30).stdout.decode()
        self.assertIn("Number of decryption secrets in file:", info, info)
        # Decrypted with the file alone.
        reqs = tshark_fields(pcap, ["http.request.uri", "frame.comment"], "http.request")
        self.assertEqual([r[0] for r in reqs], [path], f"{reqs}\n{run.describe()}")
        self.assertEqual(reqs[0][1], f"pid={pid} comm=curl")
        bodies = tshark_fields(pcap, ["http.file_data"], "http.response")
        self.assertEqual(len(bodies), 1, bodies)
        got = bodies[0][0]
        self.assertTrue(got == body.decode() or got == body.hex(), f"{got!r} != {body!r}")
        # Only port P, each packet once, timestamps inside the test's window.
        pkts = tshark_fields(pcap, ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "ip.id",
                                    "tcp.seq_raw", "tcp.len", "tcp.flags"])
        self.assertGreater(len(pkts), 6)
        ports = {int(p[1]) for p in pkts} | {int(p[2]) for p in pkts}
        self.assertEqual(ports, {lport, self.port}, f"other traffic (port {other}) leaked")
        ident = [tuple(p[1:]) for p in pkts]
        self.assertEqual(len(ident), len(set(ident)), "a packet appears twice")
        for p in pkts:
            self.assertTrue(t0 - 1 <= float(p[0]) <= t1 + 1, f"timestamp {p[0]} outside window")
        # Each packet names its sender: curl's packets curl, nginx's the worker.
        workers = self.nginx.worker_pids()
        expect = {str(lport): f"pid={pid} comm=curl"}
        expect[str(self.port)] = {f"pid={w} comm=nginx" for w in workers}
        for c in tshark_fields(pcap, ["tcp.srcport", "frame.comment"]):
            want = expect[c[0]]
            self.assertIn(c[1], want if isinstance(want, set) else {want}, c)

    def test_01_tls13(self):
        self.check(["--tlsv1.3"])

    def test_02_tls12(self):
        self.check(["--tls-max", "1.2"])

    def bad(self, args, must_mention):
        r = subprocess.run([helpers.BINARY, *args, "-k", os.path.join(self.tmp, "k.log")],
                           capture_output=True, timeout=20, cwd=self.tmp)
        err = r.stderr.decode()
        self.assertNotEqual(r.returncode, 0, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(err.startswith("ecapture: ") and must_mention in err, err)

    def test_03_bad_input(self):
        pcap = os.path.join(self.tmp, "x.pcapng")
        self.bad(["tls", "-m", "pcap", "-i", "nosuchif0", "-w", pcap], "nosuchif0")
        self.bad(["tls", "-m", "pcap", "-i", "lo", "-w", "/nonexistent/dir/x.pcapng"],
                 "/nonexistent/dir/x.pcapng")
        self.bad(["tls", "-m", "pcap", "-i", "lo", "-w", pcap, "tcp portt 1"], "tcp portt 1")
        self.assertFalse(os.path.exists(pcap))
        with open(pcap, "wb") as f:
            f.write(b"precious")
        self.bad(["tls", "-m", "pcap", "-i", "lo", "-w", pcap], pcap)
        with open(pcap, "rb") as f:
            self.assertEqual(f.read(), b"precious")

    def test_04_sigkill_leaves_a_readable_file_and_no_bpf(self):
        """kill -9: the pcapng holds everything up to the last periodic flush (about 1 s), and the
        kernel drops our programs and links with the process."""
        path, body = self.new_file(40)
        pcap = os.path.join(self.tmp, "killed.pcapng")
        out = os.path.join(self.tmp, "body.out")
        args = ["tls", "-m", "pcap", "-i", "lo", "-w", pcap, "-k",
                os.path.join(self.tmp, "k.log"), "tcp", "port", str(self.port)]
        with self.run_ecapture(args, stop_signal=signal.SIGKILL, expect_rc=None) as run:
            owned = helpers.owned_bpf_ids(run.pid)
            p = self.procs.popen(self.curl_args(path, out, ["--tlsv1.3"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            lport, _ = self.finish_curl(p)
            # Killed once a periodic flush has put the response in the file (packets are held
            # 0.5 s, flushes come every second).
            helpers.wait_until(lambda: len(tshark_fields(pcap, ["http.file_data"],
                                                         "http.response")) == 1, 10, 0.2)
        self.assertEqual(run.returncode, -signal.SIGKILL)
        r = subprocess.run(["tshark", "-n", "-r", pcap], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        reqs = tshark_fields(pcap, ["tcp.srcport", "http.request.uri", "frame.comment"],
                             "http.request")
        self.assertEqual(reqs, [[str(lport), path, f"pid={p.pid} comm=curl"]], run.describe())
        bodies = tshark_fields(pcap, ["http.file_data"], "http.response")
        self.assertEqual(len(bodies), 1, bodies)
        self.assertIn(bodies[0][0], (body.decode(), body.hex()))

        self.assertTrue(owned["prog"] and owned["link"], owned)
        helpers.assert_bpf_released(self, owned)


if __name__ == "__main__":
    unittest.main()
