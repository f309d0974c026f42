"""`ecapture tls -m keylog`: the key log must let tshark decrypt an independent capture.

An independent tshark records the traffic on lo; tshark then decrypts that capture with our key
log only, and the decrypted stream must hold the exact request line and the random body.
"""
import os
import signal
import subprocess
import tempfile
import shutil
import time
import unittest

import helpers
from test_tls_text import TlsText


class Sniffer:
    """tshark writing lo traffic of one TCP port to a pcapng file."""

    def __init__(self, testcase, procs, path, port):
        self.path = path
        self.err = open(path + ".err", "w+b")
        self.p = procs.popen(["tshark", "-n", "-i", "lo", "-f", f"tcp port {port}", "-w", path],
                             stdout=subprocess.DEVNULL, stderr=self.err)
        ok = helpers.wait_until(lambda: b"Capturing on" in self._err(), 15)
        testcase.assertTrue(ok, f"tshark did not start: {self._err()!r}")

    def _err(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        time.sleep(0.3)  # let the last packets through
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=15)
        self.err.close()


def decrypted_streams(pcap, keylog):
    """The decrypted TLS streams of `pcap` (tshark follow output) using only `keylog`."""
    out = []
    decode = helpers.tls_decode_as(pcap)
    for idx in range(4):
        r = subprocess.run(["tshark", "-n", "-r", pcap, *decode, "-o", f"tls.keylog_file:{keylog}",
                            "-q", "-z", f"follow,tls,ascii,{idx}"],
                           capture_output=True, timeout=60)
        out.append(r.stdout)
    return b"\n".join(out)


class TlsKeys(helpers.E2ETestCase):
    setUpClass = classmethod(TlsText.setUpClass.__func__)
    new_file = TlsText.new_file
    curl_args = TlsText.curl_args
    finish_curl = TlsText.finish_curl

    def keylog_run(self, tls_flag, pid_of=None):
        """curl with `tls_flag` under `ecapture tls -m keylog` (optionally --pid of the client or
        of nginx's worker); returns (keylog text, decrypted streams, request path, body)."""
        path, body = self.new_file(40)
        keys = os.path.join(self.tmp, "keys.log")
        pcap = os.path.join(self.tmp, "indep.pcapng")
        out = os.path.join(self.tmp, "body.out")
        sniffer = Sniffer(self, self.procs, pcap, self.port)
        # The client waits for a line, then execs curl: its pid is known before ecapture starts.
        client = self.procs.popen(["/bin/sh", "-c", 'read go; exec "$@"', "sh",
                                   *self.curl_args(path, out, tls_flag)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        args = ["tls", "-m", "keylog", "-k", keys]
        if pid_of == "client":
            args += ["--pid", str(client.pid)]
        elif pid_of == "nginx":
            args += ["--pid", str(self.nginx.worker_pids()[0])]
        with self.run_ecapture(args) as run:
            self.last_run = run
            client.stdin.write(b"go\n")
            client.stdin.flush()
            self.finish_curl(client)
            ok = helpers.wait_until(lambda: os.path.exists(keys) and os.path.getsize(keys) > 0, 5)
            self.assertTrue(ok, f"no keys written.\n{run.describe()}")
            run.settle()
        sniffer.stop()
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        self.assertEqual(os.stat(keys).st_mode & 0o777, 0o600)
        with open(keys) as f:
            text = f.read()
        return text, decrypted_streams(pcap, keys), path, body

    def assert_decrypted(self, streams, path, body, text):
        request_line = f"GET {path} HTTP/1.1".encode()
        self.assertIn(request_line, streams, f"tshark could not decrypt the request with:\n{text}")
        self.assertIn(body, streams, f"tshark could not decrypt the response with:\n{text}")

    def test_01_tls13_client_pid(self):
        text, streams, path, body = self.keylog_run(["--tlsv1.3"], pid_of="client")
        self.assertIn("(checked against the library's code: s3, client_random, session, "
                      "master_key)", self.last_run.stderr_text())
        labels = [line.split()[0] for line in text.splitlines()]
        self.assertEqual(labels, ["CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                  "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
                                  "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"], text)
        self.assert_decrypted(streams, path, body, text)

    def test_02_tls12_client_pid(self):
        text, streams, path, body = self.keylog_run(["--tls-max", "1.2"], pid_of="client")
        lines = text.splitlines()
        self.assertEqual(len(lines), 1, text)
        label, cr, secret = lines[0].split()
        self.assertEqual((label, len(cr), len(secret)), ("CLIENT_RANDOM", 64, 96))
        self.assert_decrypted(streams, path, body, text)

    def test_03_tls13_server_pid(self):
        text, streams, path, body = self.keylog_run(["--tlsv1.3"], pid_of="nginx")
        self.assertEqual(len(text.splitlines()), 5, text)
        self.assert_decrypted(streams, path, body, text)

    def test_04_tls12_server_pid(self):
        text, streams, path, body = self.keylog_run(["--tls-max", "1.2"], pid_of="nginx")
        self.assertEqual([l.split()[0] for l in text.splitlines()], ["CLIENT_RANDOM"], text)
        self.assert_decrypted(streams, path, body, text)

    def test_05_existing_keylog_is_appended(self):
        keys = os.path.join(self.tmp, "keys.log")
        with open(keys, "w") as f:
            f.write("# existing line\n")
        os.chmod(keys, 0o600)
        path, body = self.new_file(40)
        out = os.path.join(self.tmp, "b.out")
        with self.run_ecapture(["tls", "-m", "keylog", "-k", keys]) as run:
            p = self.procs.popen(self.curl_args(path, out, ["--tlsv1.3"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.finish_curl(p)
            helpers.wait_until(lambda: os.path.getsize(keys) > 20, 5)
            run.settle()
        with open(keys) as f:
            text = f.read()
        self.assertTrue(text.startswith("# existing line\nCLIENT_HANDSHAKE_TRAFFIC_SECRET "), text)

    def test_07_python_ex_path(self):
        """python3's ssl module uses SSL_read_ex/SSL_write_ex and SSL_do_handshake."""
        path, body = self.new_file(40)
        keys = os.path.join(self.tmp, "keys.log")
        pcap = os.path.join(self.tmp, "indep.pcapng")
        sniffer = Sniffer(self, self.procs, pcap, self.port)
        code = ("import ssl, sys, urllib.request\n"
                "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
                "print(urllib.request.urlopen(sys.argv[2], context=ctx).read().decode())\n")
        with self.run_ecapture(["tls", "-m", "keylog", "-k", keys]) as run:
            p = self.procs.popen([helpers.DEBIAN_PYTHON, "-c", code, self.cert,
                                  f"https://127.0.0.1:{self.port}{path}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(out.strip(), body)
            helpers.wait_until(lambda: os.path.exists(keys) and os.path.getsize(keys) > 0, 5)
            run.settle()
        sniffer.stop()
        with open(keys) as f:
            text = f.read()
        self.assertIn(f"comm={os.path.basename(helpers.DEBIAN_PYTHON)}", run.stderr_text())
        self.assert_decrypted(decrypted_streams(pcap, keys), path, body, text)

    def test_06a_forced_layout_that_disagrees_with_the_code_is_flagged(self):
        """Debian's 3.0.x keeps the session at 0x918; forcing 3.2.0's layout (0x880) is obeyed,
        with a warning naming the disagreement and the instruction read."""
        with self.run_ecapture(["tls", "-m", "keylog", "--ssl_version", "openssl 3.2.0", "-k",
                                os.path.join(self.tmp, "k.log")]) as run:
            pass
        self.assertRegex(run.stderr_text(), r"forced with --ssl_version although client_random at "
                         r"0x160 in SSL_get_client_random \(`lea rsi, \[rdi \+ 0x160\]` at "
                         r"0x[0-9a-f]+\), the table says 0x140; session at 0x918 in "
                         r"SSL_get_session \(`mov rax, qword ptr \[rdi \+ 0x918\]` at "
                         r"0x[0-9a-f]+\), the table says 0x880")

    def test_06_bad_ssl_version(self):
        r = subprocess.run([helpers.BINARY, "tls", "-m", "keylog", "--ssl_version", "openssl 9.9.9",
                            "-k", os.path.join(self.tmp, "k.log")],
                           capture_output=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.decode()
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertTrue(err.startswith("ecapture: ") and "9.9.9" in err and "--ssl_version" in err,
                        err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "k.log")))


if __name__ == "__main__":
    unittest.main()
