"""`ecapture gnutls` and `ecapture nss` text output against real clients and nginx on 127.0.0.1.

GnuTLS clients: wget and gnutls-cli. NSS clients: tstclnt (libnss3-tools) and a tiny NSS client
built by the test. Every request carries a random token and every response body is random: each
must appear exactly once in the client's WRITE / READ stream, with the client's pid, comm and
ports. The client's local port is the one nginx logged for the request ($remote_port in the
access log), for every client; gnutls-cli and the tiny client also report it themselves.
tstclnt and the tiny client also print the reply on stdout through PR_Write: those writes must
not be reported.
"""
import re
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

import helpers
from helpers import ep, select, stream, summarize

# nginx's view of each request: the client's port ($remote_port) and the server's.
ACCESS_LOG_FORMAT = 'remote_port=$remote_port server_port=$server_port pid=$pid "$request"'

NSS_CLIENT = textwrap.dedent("""\
    #include <nss.h>
    #include <prio.h>
    #include <prnetdb.h>
    #include <ssl.h>
    #include <sslproto.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>
    static SECStatus accept_any(void *arg, PRFileDesc *fd, PRBool a, PRBool b) {
      (void)arg; (void)fd; (void)a; (void)b; return SECSuccess; /* test only */
    }
    int main(int argc, char **argv) {
      if (argc != 3) return 2;
      int port = atoi(argv[1]);
      const char *path = argv[2];
      if (NSS_NoDB_Init(NULL) != SECSuccess) return 3;
      NSS_SetDomesticPolicy();
      PRFileDesc *ssl = SSL_ImportFD(NULL, PR_NewTCPSocket());
      SSL_OptionSet(ssl, SSL_SECURITY, PR_TRUE);
      SSL_OptionSet(ssl, SSL_HANDSHAKE_AS_CLIENT, PR_TRUE);
      SSLVersionRange vr = {SSL_LIBRARY_VERSION_TLS_1_2, SSL_LIBRARY_VERSION_TLS_1_3};
      SSL_VersionRangeSet(ssl, &vr);
      SSL_SetURL(ssl, "localhost");
      SSL_AuthCertificateHook(ssl, accept_any, NULL);
      PRNetAddr a;
      PR_InitializeNetAddr(PR_IpAddrLoopback, port, &a);
      if (PR_Connect(ssl, &a, PR_SecondsToInterval(5)) != PR_SUCCESS) return 4;
      SSL_ResetHandshake(ssl, PR_FALSE);
      if (SSL_ForceHandshake(ssl) != SECSuccess) return 5;
      PRNetAddr local;
      PR_GetSockName(ssl, &local);
      /* stderr: the pid and port; stdout (through NSPR): the reply. */
      fprintf(stderr, "pid=%d port=%d\\n", (int)getpid(), (int)PR_ntohs(local.inet.port));
      fflush(stderr);
      char line[256];
      if (strcmp(path, "-") == 0) { /* the path comes on stdin, once connected */
        if (!fgets(line, sizeof line, stdin)) return 7;
        line[strcspn(line, "\\n")] = 0;
        path = line;
      }
      char req[512];
      int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\\r\\nHost: localhost\\r\\n"
                       "Connection: close\\r\\n\\r\\n", path);
      if (PR_Write(ssl, req, n) != n) return 6;
      char buf[4096];
      PRFileDesc *out = PR_GetSpecialFD(PR_StandardOutput);
      int got;
      while ((got = PR_Read(ssl, buf, sizeof buf)) > 0) PR_Write(out, buf, got);
      PR_Close(ssl);
      NSS_Shutdown();
      return 0;
    }
""")


def build_nss_client(directory):
    """NSS_CLIENT built in `directory`: argv port path (or "-": the path is read from stdin
    once the connection is up)."""
    src = os.path.join(directory, "nssclient.c")
    with open(src, "w") as f:
        f.write(NSS_CLIENT)
    binary = os.path.join(directory, "nssclient")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nss"], check=True,
                           capture_output=True, text=True, timeout=30).stdout.split()
    subprocess.run(["gcc", "-O1", "-o", binary, src, *flags], check=True, capture_output=True,
                   timeout=120)
    return binary


class GnutlsNssText(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_class_nginx("ecap-e2e-gnutls-", log_format=ACCESS_LOG_FORMAT)
        cls.nss_client = build_nss_client(cls.cls_tmp)

    def new_file(self, size=64):
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(size)
        self.nginx.write_file(name, body)
        return "/" + name, body

    def server_seen_port(self, path):
        """The client port nginx logged for the one request of `path`."""
        pattern = re.compile(r'^remote_port=(\d+) server_port=(\d+) pid=(\d+) "GET ' +
                             re.escape(path) + r' HTTP/1\.1"$')
        found = []

        def logged():
            found[:] = [m for m in map(pattern.match, self.nginx.access_log_lines()) if m]
            return found
        helpers.wait_until(logged, 5)
        self.assertEqual(len(found), 1, self.nginx.access_log_lines()[-5:])
        m = found[0]
        self.assertEqual(int(m.group(2)), self.port, m.group(0))
        self.assertIn(int(m.group(3)), self.nginx.worker_pids(), m.group(0))
        return int(m.group(1))

    def check_exchange(self, blocks, pid, comm, path, body, lport):
        """The client's WRITE stream holds the request line once, its READ stream the body once,
        on one fd; every block of the client carries its pid and the exact 4-tuple
        127.0.0.1:lport <-> 127.0.0.1:server port (mirrored for reads)."""
        dump = summarize(blocks)
        writes = select(blocks, pid=pid, direction="WRITE")
        reads = select(blocks, pid=pid, direction="READ")
        self.assertTrue(writes, f"no WRITE block of {comm} pid {pid}:\n{dump}")
        self.assertTrue(reads, f"no READ block of {comm} pid {pid}:\n{dump}")
        fds = {b.fd for b in writes + reads}
        self.assertEqual(len(fds), 1, f"{comm}: one connection expected, fds {fds}:\n{dump}")
        fd = fds.pop()
        self.assertGreaterEqual(fd, 0)
        line = f"GET {path} HTTP/1.1\r\n".encode()
        wstream = stream(blocks, pid, "WRITE", fd)
        rstream = stream(blocks, pid, "READ", fd)
        self.assertEqual(wstream.count(line), 1, f"{comm} request line:\n{dump}")
        self.assertTrue(wstream.startswith(line), wstream[:200])
        self.assertTrue(wstream.endswith(b"\r\n\r\n"), wstream[-200:])
        self.assertEqual(rstream.count(body), 1, f"{comm} response body:\n{dump}")
        self.assertTrue(rstream.startswith(b"HTTP/1.1 200 OK\r\n"), rstream[:200])
        self.assertTrue(rstream.endswith(body), rstream[-200:])
        for b in writes + reads:
            self.assertEqual(b.comm, comm, b.header())
            self.assertEqual(b.uid, os.getuid(), b.header())
        self.assertNotEqual(lport, self.port)
        for b in select(blocks, pid=pid):
            self.assertEqual(b.pid, pid, b.header())
            self.assertEqual(b.fd, fd, b.header())
            if b.direction == "WRITE":
                self.assertEqual((b.src, b.dst), (ep(lport), ep(self.port)), b.header())
            else:
                self.assertEqual(b.direction, "READ", b.header())
                self.assertEqual((b.src, b.dst), (ep(self.port), ep(lport)), b.header())
        # nobody else saw these bytes (nginx uses OpenSSL, not hooked here)
        others = [b for b in blocks if b.pid != pid and (body in b.payload or line in b.payload)]
        self.assertEqual(others, [], dump)

    def check_only_tls(self, blocks, pid, request, stdout):
        """NSS clients: the WRITE stream is exactly the request and the READ stream exactly the
        reply, which the client also printed on stdout through PR_Write -- those stdout writes
        (fd 1, no socket) are not reported."""
        dump = summarize(blocks)
        self.assertEqual(stream(blocks, pid, "WRITE"), request, dump)
        self.assertTrue(stdout.startswith(b"HTTP/1.1 200 OK\r\n"), stdout[:200])
        self.assertEqual(stream(blocks, pid, "READ"), stdout, dump)
        self.assertEqual([b.header() for b in select(blocks, pid=pid) if b.fd in (0, 1, 2)], [])
        self.assertEqual(
            [b.header() for b in select(blocks, pid=pid, direction="WRITE")
             if b"200 OK" in b.payload], [], dump)

    # -- gnutls -----------------------------------------------------------------------------------

    def test_01_gnutls_wget(self):
        path, body = self.new_file(64)
        out = os.path.join(self.tmp, "wget.out")
        # The library named: the hooks are listed at start (test_hostwide_tlslib.py runs wget
        # under host-wide capture).
        with self.run_ecapture(["gnutls", "--gnutls", "/usr/lib/x86_64-linux-gnu/libgnutls.so.30"]
                               ) as run:
            p = self.procs.popen(["wget", "-q", "--ca-certificate", self.cert, "-O", out,
                                  f"https://127.0.0.1:{self.port}{path}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            run.settle()
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        self.check_exchange(run.blocks(), p.pid, "wget", path, body, self.server_seen_port(path))
        self.assertIn("gnutls_record_send", run.stderr_text())
        self.assertNotIn("gnutls_record_send2", run.stderr_text())

    def test_02_gnutls_cli_exact_port(self):
        path, body = self.new_file(300)
        with self.run_ecapture(["gnu"]) as run:
            # A session of its own: host-wide capture stops a new process (one without a
            # controlling terminal) until its library is hooked.
            p = self.procs.popen(["gnutls-cli", "--x509cafile", self.cert, "-p",
                                  str(self.port), "localhost"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            lines = helpers.LineReader(p.stdout, "gnutls-cli")
            while b"Simple Client Mode" not in lines.get(timeout=20):
                pass
            ports = helpers.tcp_local_ports(p.pid, self.port)
            self.assertEqual(len(ports), 1, ports)
            lport = ports.pop()
            # CRLFs as they are: gnutls-cli --crlf rewrites only the first LF (and adds a NUL)
            p.stdin.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                          .encode())
            p.stdin.flush()
            self.assertEqual(p.wait(timeout=30), 0)
            run.settle()
        self.assertEqual(self.server_seen_port(path), lport)
        self.check_exchange(run.blocks(), p.pid, "gnutls-cli", path, body, lport)

    # -- nss --------------------------------------------------------------------------------------

    def test_03_nss_tstclnt_stdout_not_reported(self):
        path, body = self.new_file(64)
        req = os.path.join(self.tmp, "req.txt")
        request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   .encode())
        with open(req, "wb") as f:
            f.write(request)
        with self.run_ecapture(["nss"]) as run:
            p = self.procs.popen(["tstclnt", "-h", "localhost", "-p", str(self.port), "-D", "-o",
                                  "-4", "-A", req], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace")[-2000:])
            run.settle()
        self.assertIn(body, out)  # tstclnt printed the reply through PR_Write(stdout)
        blocks = run.blocks()
        self.check_exchange(blocks, p.pid, "tstclnt", path, body, self.server_seen_port(path))
        self.check_only_tls(blocks, p.pid, request, out)

    def test_04_nss_tiny_client_exact_port(self):
        path, body = self.new_file(5000)
        with self.run_ecapture(["nspr", "--nspr", "/usr/lib/x86_64-linux-gnu/libnspr4.so"]) as run:
            p = self.procs.popen([self.nss_client, str(self.port), path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            run.settle()
        self.assertTrue(out.endswith(body))
        info = dict(kv.split("=") for kv in err.decode().split())
        self.assertEqual(int(info["pid"]), p.pid)
        blocks = run.blocks()
        self.assertEqual(self.server_seen_port(path), int(info["port"]))
        self.check_exchange(blocks, p.pid, "nssclient", path, body, int(info["port"]))
        request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   .encode())
        self.check_only_tls(blocks, p.pid, request, out)

    # -- bad input --------------------------------------------------------------------------------

    def run_bad(self, args):
        p = subprocess.run([helpers.BINARY, *args], capture_output=True, timeout=30)
        err = p.stderr.decode(errors="replace").strip().splitlines()
        self.assertNotEqual(p.returncode, 0, args)
        self.assertTrue(err and err[-1].startswith("ecapture: "), err)
        return err[-1]

    def test_05_bad_input(self):
        lib = "/usr/lib/x86_64-linux-gnu"
        notelf = os.path.join(self.tmp, "libgnutls.so.30")
        with open(notelf, "w") as f:
            f.write("not a library\n")
        # wrong paths
        msg = self.run_bad(["gnutls", "--gnutls", "/nonexistent/libgnutls.so.30"])
        self.assertIn("/nonexistent/libgnutls.so.30", msg)
        self.assertIn("--gnutls", msg)
        msg = self.run_bad(["nspr", "--nspr", "/nonexistent/libnspr4.so"])
        self.assertIn("/nonexistent/libnspr4.so", msg)
        self.assertIn("--nspr", msg)
        self.assertEqual(self.run_bad(["gnutls", "--gnutls", self.tmp]),
                         f"ecapture: --gnutls: cannot open {self.tmp}: not a regular file")
        self.assertEqual(self.run_bad(["nss", "--nspr", self.tmp]),
                         f"ecapture: --nspr: cannot open {self.tmp}: not a regular file")
        # files that are not libraries
        self.assertEqual(self.run_bad(["gnutls", "--gnutls", notelf]),
                         f"ecapture: --gnutls: cannot open {notelf}: not an ELF file")
        self.assertEqual(self.run_bad(["nss", "--nspr", notelf]),
                         f"ecapture: --nspr: cannot open {notelf}: not an ELF file")
        # libraries of the wrong kind, in every mode
        for mode in ("text", "keylog", "pcap"):
            self.assertEqual(
                self.run_bad(["gnutls", "-m", mode, "--gnutls", helpers.SYSTEM_LIBSSL,
                              "-k", os.path.join(self.tmp, "k.log"),
                              "-w", os.path.join(self.tmp, "p.pcapng")]),
                f"ecapture: {helpers.SYSTEM_LIBSSL} does not export gnutls_record_send (is this "
                "GnuTLS? pass libgnutls.so.30 with --gnutls)")
        self.assertEqual(
            self.run_bad(["gnutls", "--gnutls", f"{lib}/libnspr4.so"]),
            f"ecapture: {lib}/libnspr4.so does not export gnutls_record_send (is this GnuTLS? "
            "pass libgnutls.so.30 with --gnutls)")
        self.assertEqual(
            self.run_bad(["nss", "--nspr", f"{lib}/libgnutls.so.30"]),
            f"ecapture: {lib}/libgnutls.so.30 does not export PR_Write (is this NSPR? pass "
            "libnspr4.so with --nspr)")
        for nss_lib in ("libnss3.so", "libssl3.so"):
            self.assertEqual(
                self.run_bad(["nss", "--nspr", f"{lib}/{nss_lib}"]),
                f"ecapture: {lib}/{nss_lib} does not export PR_Write (is this NSPR? NSS's TLS "
                "data goes through NSPR: pass libnspr4.so (from the same directory) with --nspr)")
        msg = self.run_bad(["gnutls", "-m", "bogus"])
        self.assertIn("bogus", msg)
        self.assertEqual(os.listdir(self.tmp), ["libgnutls.so.30"])  # no key/pcap file left

if __name__ == "__main__":
    unittest.main()
