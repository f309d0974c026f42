"""Host-wide `ecapture gnutls` and `ecapture nss` (no --gnutls / --nspr, no --pid): every
libgnutls / libnspr4 in use is hooked, also in processes started after ecapture and in other mount
namespaces, each file once.

A "copy namespace" is a private mount namespace (`unshare -m`) where the system libgnutls.so.30 is
bind-mounted over by a fresh copy: the same path, another inode, the way a container image brings
its own GnuTLS. Every copy is new, so the kernel side has never seen it: its first mapping stops
the process until its hooks are attached.

The exchanges are checked as in test_gnutls_nss.py: request and response exactly once on one fd,
with the client's pid, comm and the port nginx logged for the request.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import helpers
import test_gnutls_nss as gn
from helpers import select

LIBDIR = "/usr/lib/x86_64-linux-gnu"
GNUTLS = f"{LIBDIR}/libgnutls.so.30"
GNUTLS_FILE = os.path.realpath(GNUTLS)  # the name in /proc/<pid>/maps
NSPR = f"{LIBDIR}/libnspr4.so"


def api_status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as r:
        return json.loads(r.read())["data"]


def package_version(pkg):
    """The upstream version of a Debian package: "2:4.35-1" -> "4.35"."""
    v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                       text=True, check=True, timeout=30).stdout
    return v.split(":", 1)[-1].rsplit("-", 1)[0]


def gnutls_version():
    out = subprocess.run(["gnutls-cli", "--version"], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    return out.splitlines()[0].split()[-1]  # "gnutls-cli 3.7.9"


class HostWideTlsLib(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_class_nginx("ecap-e2e-hostwide-tlslib-", log_format=gn.ACCESS_LOG_FORMAT)
        cls.nss_client = gn.build_nss_client(cls.cls_tmp)

    # The checks of test_gnutls_nss.py, on this class's nginx.
    new_file = gn.GnutlsNssText.new_file
    server_seen_port = gn.GnutlsNssText.server_seen_port
    check_exchange = gn.GnutlsNssText.check_exchange
    check_only_tls = gn.GnutlsNssText.check_only_tls

    # -- helpers --------------------------------------------------------------------------------

    def popen(self, argv, **kw):
        # A session of its own: no controlling terminal (the kernel side stops only such
        # processes while their hooks are attached).
        return self.procs.popen(argv, start_new_session=True, **kw)

    def copy_ns(self, argv):
        """argv in a private mount namespace whose libgnutls.so.30 is a fresh copy."""
        d = tempfile.mkdtemp(prefix="libs-", dir=self.tmp)
        copy = os.path.join(d, "libgnutls.so.30")
        shutil.copy2(GNUTLS, copy)
        script = f'mount --bind {copy} {GNUTLS} && exec "$@"'
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]

    def wget(self, path, ns=False):
        """wget of `path`, started now; returns its pid once it exited successfully."""
        out = os.path.join(self.tmp, "wget." + helpers.rand_token(6))
        argv = ["wget", "-q", "--ca-certificate", self.cert, "-O", out,
                f"https://127.0.0.1:{self.port}{path}"]
        p = self.popen(self.copy_ns(argv) if ns else argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
        with open(out, "rb") as f:
            return p.pid, f.read()

    def gnutls_cli(self, ns=False):
        """A gnutls-cli connected to nginx, waiting for its request on stdin: (proc, port)."""
        argv = ["gnutls-cli", "--x509cafile", self.cert, "-p", str(self.port), "localhost"]
        p = self.popen(self.copy_ns(argv) if ns else argv, stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines = helpers.LineReader(p.stdout, "gnutls-cli")
        while b"Simple Client Mode" not in lines.get(timeout=20):
            pass
        ports = helpers.tcp_local_ports(p.pid, self.port)
        self.assertEqual(len(ports), 1, ports)
        return p, ports.pop()

    def finish_gnutls_cli(self, p, path):
        # CRLFs as they are: gnutls-cli --crlf rewrites only the first LF (and adds a NUL)
        p.stdin.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                      .encode())
        p.stdin.flush()
        self.assertEqual(p.wait(timeout=30), 0)

    def wait_exchange(self, run, pid, path, body):
        """Waits until the request line and the body of `path` were captured for `pid`."""
        line = f"GET {path} HTTP/1.1\r\n".encode()

        def seen():
            blocks = run.blocks()
            return (any(line in b.payload for b in select(blocks, pid=pid, direction="WRITE")) and
                    helpers.stream(blocks, pid, "READ").endswith(body))
        helpers.wait_until(seen, 15)
        run.settle()

    def target_lines(self, run, module):
        return [x for x in run.stderr_text().splitlines() if f"{module}: target " in x]

    # -- tests ----------------------------------------------------------------------------------

    def test_01_gnutls_clients_started_after(self):
        """`ecapture gnutls`, then wget and gnutls-cli, each started after it."""
        with self.run_ecapture(["gnutls"]) as run:
            path, body = self.new_file(64)
            pid, got = self.wget(path)
            self.assertEqual(got, body)
            self.wait_exchange(run, pid, path, body)
            self.check_exchange(run.blocks(), pid, "wget", path, body,
                                self.server_seen_port(path))

            path, body = self.new_file(300)
            p, lport = self.gnutls_cli()
            self.finish_gnutls_cli(p, path)
            self.wait_exchange(run, p.pid, path, body)
            self.assertEqual(self.server_seen_port(path), lport)
            self.check_exchange(run.blocks(), p.pid, "gnutls-cli", path, body, lport)

    def test_02_nss_tstclnt_started_after(self):
        """`ecapture nss`, then tstclnt started after it."""
        path, body = self.new_file(64)
        req = os.path.join(self.tmp, "req.txt")
        request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   .encode())
        with open(req, "wb") as f:
            f.write(request)
        with self.run_ecapture(["nss"]) as run:
            p = self.popen(["tstclnt", "-h", "localhost", "-p", str(self.port), "-D", "-o", "-4",
                            "-A", req], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace")[-2000:])
            self.assertIn(body, out)
            self.wait_exchange(run, p.pid, path, out)
        blocks = run.blocks()
        self.check_exchange(blocks, p.pid, "tstclnt", path, body, self.server_seen_port(path))
        self.check_only_tls(blocks, p.pid, request, out)

    def test_03_copied_gnutls_is_its_own_target(self):
        """A gnutls-cli in a copy namespace and one on the host, both running before ecapture:
        two targets (log and GET /status), each exchange captured; then a wget in another copy
        namespace started after ecapture: captured too."""
        host_cli, host_port = self.gnutls_cli()
        copy_cli, copy_port = self.gnutls_cli(ns=True)
        copy_host_path = f"/proc/{copy_cli.pid}/root{GNUTLS_FILE}"
        with open(f"/proc/{copy_cli.pid}/maps") as f:
            self.assertIn(GNUTLS_FILE, f.read())
        self.assertNotEqual(os.stat(copy_host_path).st_ino, os.stat(GNUTLS).st_ino)
        version = f"GnuTLS {gnutls_version()}"
        api_port = helpers.free_port()
        with self.run_ecapture(["gnutls", "--listen", f"127.0.0.1:{api_port}"]) as run:
            lines = self.target_lines(run, "gnutls")
            copy_line = [x for x in lines if copy_host_path in x]
            self.assertEqual(len(copy_line), 1, "\n".join(lines))
            self.assertIn(f"gnutls: target {GNUTLS_FILE} (from here {copy_host_path}): GnuTLS, "
                          f"{version}, 1 process", copy_line[0])
            system = [x for x in lines
                      if f"gnutls: target {GNUTLS_FILE}: GnuTLS, {version}, " in x]
            self.assertEqual(len(system), 1, "\n".join(lines))

            report = api_status(api_port)["target_report"]
            copies = [t for t in report if t["host_path"] == copy_host_path]
            self.assertEqual(len(copies), 1, report)
            self.assertEqual(
                (copies[0]["path"], copies[0]["library"], copies[0]["version"],
                 copies[0]["processes"], copies[0]["pids"], copies[0]["hooked"]),
                (GNUTLS_FILE, "GnuTLS", version, 1, [copy_cli.pid], True))
            sys_lib = [t for t in report if t["host_path"] == GNUTLS_FILE]
            self.assertEqual(len(sys_lib), 1, report)
            self.assertIn(host_cli.pid, sys_lib[0]["pids"])
            self.assertNotIn(copy_cli.pid, sys_lib[0]["pids"])
            self.assertEqual((sys_lib[0]["processes"], sys_lib[0]["hooked"]),
                             (len(sys_lib[0]["pids"]), True))

            for p, lport, what in ((copy_cli, copy_port, "copy"), (host_cli, host_port, "host")):
                path, body = self.new_file(200)
                self.finish_gnutls_cli(p, path)
                self.wait_exchange(run, p.pid, path, body)
                self.assertEqual(self.server_seen_port(path), lport, what)
                self.check_exchange(run.blocks(), p.pid, "gnutls-cli", path, body, lport)

            path, body = self.new_file(64)
            pid, got = self.wget(path, ns=True)
            self.assertEqual(got, body)
            self.wait_exchange(run, pid, path, body)
            self.check_exchange(run.blocks(), pid, "wget", path, body,
                                self.server_seen_port(path))

    def test_04_nss_startup_report(self):
        """An NSS client connected before `ecapture nss`: its libnspr4 is a target with the NSPR
        and NSS versions (log and GET /status), and its exchange is captured."""
        path, body = self.new_file(5000)
        p = self.popen([self.nss_client, str(self.port), "-"], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        info = dict(kv.split("=") for kv in helpers.LineReader(p.stderr, "nssclient").get()
                    .decode().split())
        self.assertEqual(int(info["pid"]), p.pid)
        version = f"NSPR {package_version('libnspr4')}, NSS {package_version('libnss3')}"
        api_port = helpers.free_port()
        with self.run_ecapture(["nss", "--listen", f"127.0.0.1:{api_port}"]) as run:
            lines = [x for x in self.target_lines(run, "nss")
                     if f"nss: target {NSPR}: NSS/NSPR, {version}, " in x]
            self.assertEqual(len(lines), 1, run.describe())
            report = [t for t in api_status(api_port)["target_report"] if t["host_path"] == NSPR]
            self.assertEqual(len(report), 1, report)
            self.assertEqual((report[0]["path"], report[0]["library"], report[0]["version"],
                              report[0]["hooked"], report[0]["processes"]),
                             (NSPR, "NSS/NSPR", version, True, len(report[0]["pids"])))
            self.assertIn(p.pid, report[0]["pids"])

            p.stdin.write(f"{path}\n".encode())
            p.stdin.close()
            out = p.stdout.read()
            self.assertEqual(p.wait(timeout=30), 0)
            self.assertTrue(out.endswith(body))
            self.wait_exchange(run, p.pid, path, out)
        blocks = run.blocks()
        self.assertEqual(self.server_seen_port(path), int(info["port"]))
        self.check_exchange(blocks, p.pid, "nssclient", path, body, int(info["port"]))
        request = (f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   .encode())
        self.check_only_tls(blocks, p.pid, request, out)

if __name__ == "__main__":
    unittest.main()
