"""`ecapture gnutls -m keylog|pcap`: keys of wget's GnuTLS sessions, TLS 1.2 and 1.3.

keylog: the lines must equal GnuTLS's own SSLKEYLOGFILE output for the same connection, and
tshark must decrypt an independent capture with our file alone. pcap: tshark decrypts our
pcapng with no other input. Only GnuTLS 3.7.9 (Debian 12's libgnutls30) can be tested here; the
other rows of the layout table (3.6.4-3.8.13) are covered by unit tests only.
"""
import os
import subprocess

import helpers

GNUTLS = "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"
import test_gnutls_nss  # not `from ... import`: the loader would run its tests twice
from test_tls_keys import Sniffer, decrypted_streams
from test_tls_pcap import tshark_fields


class GnutlsKeys(helpers.E2ETestCase):
    setUpClass = classmethod(test_gnutls_nss.GnutlsNssText.setUpClass.__func__)
    new_file = test_gnutls_nss.GnutlsNssText.new_file

    def wget(self, path, proto, out, env=None):
        # wget hands --ciphers to GnuTLS as the priority string (--secure-protocol=TLSv1_2
        # still allows 1.3)
        # A session of its own: host-wide capture stops a new process (one without a
        # controlling terminal) until its library is hooked.
        p = self.procs.popen(["wget", "-q", f"--ciphers=NORMAL:-VERS-ALL:+VERS-{proto}",
                              "--ca-certificate",
                              self.cert, "-O", out, f"https://127.0.0.1:{self.port}{path}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=dict(os.environ, **(env or {})), start_new_session=True)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
        return p.pid

    def keylog(self, proto, labels, extra_args=(), env=None):
        path, body = self.new_file(80)
        keys = os.path.join(self.tmp, "keys.log")
        ref = os.path.join(self.tmp, "gnutls-own.log")
        pcap = os.path.join(self.tmp, "indep.pcapng")
        out = os.path.join(self.tmp, "body.out")
        sniffer = Sniffer(self, self.procs, pcap, self.port)
        # -d: without --gnutls the library is hooked when wget maps it, logged at debug level.
        with self.run_ecapture(["gnutls", "-d", "-m", "keylog", "-k", keys, *extra_args]) as run:
            pid = self.wget(path, proto, out, {"SSLKEYLOGFILE": ref, **(env or {})})
            ok = helpers.wait_until(lambda: os.path.exists(keys) and os.path.getsize(keys) > 0, 5)
            self.assertTrue(ok, f"no keys written.\n{run.describe()}")
            run.settle()
        sniffer.stop()
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        with open(ref) as f:
            theirs = [line for line in f.read().splitlines() if line and not line.startswith("#")]
        # wget's connection: other processes' GnuTLS sessions are captured too (host-wide).
        randoms = {line.split()[1] for line in theirs}
        with open(keys) as f:
            ours = [line for line in f.read().splitlines() if line.split()[1] in randoms]
        self.assertEqual([line.split()[0] for line in ours], labels, ours)
        self.assertEqual(len({line.split()[1] for line in ours}), 1, ours)  # one connection
        self.assertEqual(sorted(ours), sorted(theirs), "ours vs GnuTLS's own SSLKEYLOGFILE")
        self.assertIn(f"pid={pid} comm=wget", run.stderr_text())
        # 3.7.9 (the library's own version string, or --ssl_version) picks the layout
        self.assertRegex(run.stderr_text(),
                         r"libgnutls\.so\.30[.\d]* layout 'gnutls 3\.7\.7-3\.7\.11'")
        return run
        streams = decrypted_streams(pcap, keys)
        self.assertIn(f"GET {path} HTTP/1.1".encode(), streams, "\n".join(ours))
        self.assertIn(body, streams, "\n".join(ours))

    def test_01_keylog_tls12(self):
        self.keylog("TLS1.2", ["CLIENT_RANDOM"])

    def test_02_keylog_tls13(self):
        self.keylog("TLS1.3", ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                                "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
                                "EXPORTER_SECRET"])

    def pcap(self, proto):
        path, body = self.new_file(80)
        pcap = os.path.join(self.tmp, "out.pcapng")
        keys = os.path.join(self.tmp, "keys.log")
        out = os.path.join(self.tmp, "body.out")
        args = ["gnutls", "-m", "pcap", "-i", "lo", "-w", pcap, "-k", keys, "tcp", "port",
                str(self.port)]
        with self.run_ecapture(args) as run:
            pid = self.wget(path, proto, out)
            # Packets are held 0.5 s so that their secrets go first, then flushed each second.
            helpers.wait_until(lambda: os.path.exists(pcap) and len(
                tshark_fields(pcap, ["http.file_data"], "http.response")) == 1, 10, 0.2)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        info = subprocess.run(["capinfos", pcap], capture_output=True, timeout=30).stdout.decode()
        self.assertIn("Number of decryption secrets in file:", info, info)
        reqs = tshark_fields(pcap, ["http.request.uri", "frame.comment"], "http.request")
        self.assertEqual([r[0] for r in reqs], [path], f"{reqs}\n{run.describe()}")
        self.assertEqual(reqs[0][1], f"pid={pid} comm=wget")
        bodies = tshark_fields(pcap, ["http.file_data"], "http.response")
        self.assertEqual(len(bodies), 1, bodies)
        got = bodies[0][0]
        self.assertTrue(got == body.decode() or got == body.hex(), f"{got!r} != {body!r}")
        hello = tshark_fields(pcap, ["tls.handshake.version",
                                     "tls.handshake.extensions.supported_version"],
                              "tls.handshake.type == 2")
        self.assertEqual(len(hello), 1, hello)
        negotiated = hello[0][1] or hello[0][0]
        self.assertEqual(negotiated, "0x0304" if proto == "TLS1.3" else "0x0303", hello)

    def test_03_pcap_tls12(self):
        self.pcap("TLS1.2")

    def test_04_pcap_tls13(self):
        self.pcap("TLS1.3")

    def test_05_ssl_version_override(self):
        # wget loads a copy of libgnutls whose version string says 3.9.9 (refused when read from
        # the library, see test_07); --ssl_version names a release of the 3.7.9 layout instead.
        lib = self.patched_library(b"3.9.9")
        run = self.keylog("TLS1.3", ["CLIENT_HANDSHAKE_TRAFFIC_SECRET",
                                     "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
                                     "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"],
                          ["--gnutls", lib, "--ssl_version", "GnuTLS 3.7.10"],
                          {"LD_LIBRARY_PATH": self.tmp})
        self.assertIn(f"keys: {lib} layout 'gnutls 3.7.7-3.7.11'", run.stderr_text())

    def run_bad(self, args):
        p = subprocess.run([helpers.BINARY, *args], capture_output=True, timeout=30)
        self.assertNotEqual(p.returncode, 0, args)
        err = p.stderr.decode(errors="replace").strip().splitlines()
        self.assertTrue(err and err[-1].startswith("ecapture: "), err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "k.log")), "key file created")
        return err[-1]

    def test_06_bad_version(self):
        keys = ["-k", os.path.join(self.tmp, "k.log")]
        self.assertEqual(
            self.run_bad(["gnutls", "-m", "keylog", "--ssl_version", "3.9.0", *keys]),
            "ecapture: --ssl_version: GnuTLS 3.9.0 has no known session layout (known: "
            "3.6.4-3.8.13), so its keys cannot be read (text capture works with any version). If "
            "it shares the layout of a known release, force it with --ssl_version, e.g. "
            "--ssl_version 3.8.13")
        msg = self.run_bad(["gnutls", "-m", "pcap", "-w", os.path.join(self.tmp, "p.pcapng"),
                            "--ssl_version", "3.6.3", *keys])
        self.assertTrue(msg.startswith("ecapture: --ssl_version: GnuTLS 3.6.3 is too old for key "
                                       "capture"), msg)
        self.assertIn("supported: 3.6.4-3.8.13", msg)
        self.assertEqual(
            self.run_bad(["gnutls", "-m", "keylog", "--ssl_version", "3.7", *keys]),
            "ecapture: --ssl_version: cannot read GnuTLS version '3.7': give it as --ssl_version "
            "X.Y.Z (e.g. --ssl_version 3.7.9)")

    def patched_library(self, new_version):
        """A copy of the system libgnutls whose version string says `new_version`."""
        with open(GNUTLS, "rb") as f:
            data = f.read()
        old = b"Enabled GnuTLS 3.7.9 logging"
        self.assertEqual(data.count(old), 1)
        new = b"Enabled GnuTLS " + new_version + b" logging"
        self.assertEqual(len(new), len(old))
        path = os.path.join(self.tmp, "libgnutls.so.30")
        with open(path, "wb") as f:
            f.write(data.replace(old, new))
        return path

    def test_07_detected_version_refused(self):
        keys = ["-k", os.path.join(self.tmp, "k.log")]
        lib = self.patched_library(b"3.9.9")
        self.assertEqual(
            self.run_bad(["gnutls", "-m", "keylog", "--gnutls", lib, *keys]),
            "ecapture: GnuTLS 3.9.9 has no known session layout (known: 3.6.4-3.8.13), so its keys "
            "cannot be read (text capture works with any version). If it shares the layout of a "
            "known release, force it with --ssl_version, e.g. --ssl_version 3.8.13 (version read "
            f"from {lib})")
        lib = self.patched_library(b"3.6.2")
        msg = self.run_bad(["gnutls", "-m", "keylog", "--gnutls", lib, *keys])
        self.assertTrue(msg.startswith("ecapture: GnuTLS 3.6.2 is too old for key capture"), msg)
        self.assertTrue(msg.endswith(f"(version read from {lib})"), msg)
        lib = self.patched_library(b"x.y.z")
        self.assertEqual(
            self.run_bad(["gnutls", "-m", "keylog", "--gnutls", lib, *keys]),
            f"ecapture: cannot capture keys from {lib}: no GnuTLS version string found in it; "
            "name the version with --ssl_version (e.g. 3.7.9)")
