"""`ecapture gnutls` and `ecapture nss` text output against real clients and nginx on 127.0.0.1.

GnuTLS clients: wget and gnutls-cli. NSS clients: tstclnt (libnss3-tools) and a tiny NSS client
built by the test. Every request carries a random token and every response body is random: each
must appear exactly once in the client's WRITE / READ stream, with the client's pid, comm and
ports. tstclnt and the tiny client also print the reply on stdout through PR_Write: those writes
must not be reported.
"""
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

import helpers
from helpers import ep, select, stream, summarize

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
      char req[512];
      int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\\r\\nHost: localhost\\r\\n"
                       "Connection: close\\r\\n\\r\\n", path);
      /* stderr: the pid and port; stdout (through NSPR): the reply. */
      fprintf(stderr, "pid=%d port=%d\\n", (int)getpid(), (int)PR_ntohs(local.inet.port));
      fflush(stderr);
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


def tcp_local_ports(pid, remote_port):
    """Local ports of `pid`'s IPv4 TCP sockets connected to 127.0.0.1:remote_port."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    with open(f"/proc/{pid}/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            lport = int(cols[1].split(":")[1], 16)
            rport = int(cols[2].split(":")[1], 16)
            if cols[9] in inodes and rport == remote_port:
                ports.add(lport)
    return ports


class GnutlsNssText(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-gnutls-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key).start(cls.cls_procs)
        cls.port = cls.nginx.port
        src = os.path.join(cls.cls_tmp, "nssclient.c")
        with open(src, "w") as f:
            f.write(NSS_CLIENT)
        cls.nss_client = os.path.join(cls.cls_tmp, "nssclient")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nss"], check=True,
                               capture_output=True, text=True, timeout=30).stdout.split()
        subprocess.run(["gcc", "-O1", "-o", cls.nss_client, src, *flags], check=True,
                       capture_output=True, timeout=120)

    def new_file(self, size=64):
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(size)
        self.nginx.write_file(name, body)
        return "/" + name, body

    def check_exchange(self, blocks, pid, comm, path, body, lport=None):
        """The client's WRITE stream holds the request line once, its READ stream the body once,
        on one fd, with mirrored 4-tuples. Returns the client's local port."""
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
        w = writes[0]
        self.assertEqual(w.dst, ep(self.port), w.header())
        if lport is not None:
            self.assertEqual(w.src, ep(lport), w.header())
        self.assertNotEqual(w.src, ep(self.port))
        for b in writes:
            self.assertEqual((b.src, b.dst), (w.src, w.dst), b.header())
        for b in reads:
            self.assertEqual((b.src, b.dst), (w.dst, w.src), b.header())
        # nobody else saw these bytes (nginx uses OpenSSL, not hooked here)
        others = [b for b in blocks if b.pid != pid and (body in b.payload or line in b.payload)]
        self.assertEqual(others, [], dump)

    # -- gnutls -----------------------------------------------------------------------------------

    def test_01_gnutls_wget(self):
        path, body = self.new_file(64)
        out = os.path.join(self.tmp, "wget.out")
        with self.run_ecapture(["gnutls"]) as run:
            p = self.procs.popen(["wget", "-q", "--ca-certificate", self.cert, "-O", out,
                                  f"https://127.0.0.1:{self.port}{path}"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            run.settle()
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        self.check_exchange(run.blocks(), p.pid, "wget", path, body)
        self.assertIn("gnutls_record_send", run.stderr_text())
        self.assertNotIn("gnutls_record_send2", run.stderr_text())

    def test_02_gnutls_cli_exact_port(self):
        path, body = self.new_file(300)
        with self.run_ecapture(["gnu"]) as run:
            p = self.procs.popen(["gnutls-cli", "--x509cafile", self.cert, "-p",
                                  str(self.port), "localhost"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
            lines = helpers.LineReader(p.stdout, "gnutls-cli")
            while b"Simple Client Mode" not in lines.get(timeout=20):
                pass
            ports = tcp_local_ports(p.pid, self.port)
            self.assertEqual(len(ports), 1, ports)
            lport = ports.pop()
            # CRLFs as they are: gnutls-cli --crlf rewrites only the first LF (and adds a NUL)
            p.stdin.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                          .encode())
            p.stdin.flush()
            self.assertEqual(p.wait(timeout=30), 0)
            run.settle()
        self.check_exchange(run.blocks(), p.pid, "gnutls-cli", path, body, lport)

    # -- nss --------------------------------------------------------------------------------------

    def test_03_nss_tstclnt_stdout_not_reported(self):
        path, body = self.new_file(64)
        req = os.path.join(self.tmp, "req.txt")
        with open(req, "wb") as f:
            f.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                    .encode())
        with self.run_ecapture(["nss"]) as run:
            p = self.procs.popen(["tstclnt", "-h", "localhost", "-p", str(self.port), "-D", "-o",
                                  "-4", "-A", req], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace")[-2000:])
            run.settle()
        self.assertIn(body, out)  # tstclnt printed the reply through PR_Write(stdout)
        blocks = run.blocks()
        self.check_exchange(blocks, p.pid, "tstclnt", path, body)
        self.assertEqual(
            [b for b in select(blocks, pid=p.pid, direction="WRITE") if body in b.payload], [])

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
        self.check_exchange(blocks, p.pid, "nssclient", path, body, int(info["port"]))
        self.assertEqual(
            [b for b in select(blocks, pid=p.pid, direction="WRITE") if body in b.payload], [])

    # -- bad input --------------------------------------------------------------------------------

    def run_bad(self, args):
        p = subprocess.run([helpers.BINARY, *args], capture_output=True, timeout=30)
        err = p.stderr.decode(errors="replace").strip().splitlines()
        self.assertNotEqual(p.returncode, 0, args)
        self.assertTrue(err and err[-1].startswith("ecapture: "), err)
        return err[-1]

    def test_05_bad_input(self):
        msg = self.run_bad(["gnutls", "--gnutls", "/nonexistent/libgnutls.so.30"])
        self.assertIn("/nonexistent/libgnutls.so.30", msg)
        msg = self.run_bad(["gnutls", "--gnutls", helpers.SYSTEM_LIBSSL])
        self.assertIn("does not export gnutls_record_send", msg)
        self.assertIn("--gnutls", msg)
        msg = self.run_bad(["nss", "--nspr", "/usr/lib/x86_64-linux-gnu/libnss3.so"])
        self.assertIn("pass libnspr4.so", msg)
        msg = self.run_bad(["nspr", "--nspr", "/nonexistent/libnspr4.so"])
        self.assertIn("/nonexistent/libnspr4.so", msg)
        msg = self.run_bad(["gnutls", "-m", "bogus"])
        self.assertIn("bogus", msg)


if __name__ == "__main__":
    unittest.main()
