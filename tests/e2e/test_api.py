"""The HTTP configuration API (--listen): hot reload to another pid, validation errors that leave
the capture running, 50 reloads under traffic without leaking fds or BPF links, the token rule."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.error
import urllib.request

import helpers
from helpers import select, summarize

# Keep-alive HTTPS client (Debian python: SSL_write_ex/SSL_read_ex).
# argv: port cafile [--loop PATH]. Without --loop: one request per stdin line (the path), one JSON
# line per response. With --loop: GET PATH forever, one JSON line per response.
CLIENT = textwrap.dedent("""\
    import http.client, json, os, ssl, sys, time
    port, cafile = int(sys.argv[1]), sys.argv[2]
    loop = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--loop" else None
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    def get(path):
        conn.request("GET", path)
        # Taken before the response: nginx closes a keep-alive connection after 1000 requests,
        # and http.client then drops the socket (and opens a new one for the next request).
        port = conn.sock.getsockname()[1]
        r = conn.getresponse()
        body = r.read()
        print(json.dumps(dict(pid=os.getpid(), port=port, path=path,
                              status=r.status, body=body.decode("latin-1"))), flush=True)
    if loop:
        while True:
            get(loop)
            time.sleep(0.02)
    for line in sys.stdin:
        get(line.strip())
""")


def api(port, method, path, body=None, token=None, timeout=30):
    """(HTTP status, parsed JSON body) of one API request (a new connection each time)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def fd_targets(pid):
    """{fd: link target} of a process."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


def link_ids(pid):
    """Ids of the BPF links a process holds (from /proc/<pid>/fdinfo)."""
    ids = set()
    for fd, target in fd_targets(pid).items():
        if target != "anon_inode:bpf_link":
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                m = re.search(r"^link_id:\s*(\d+)", f.read(), re.M)
        except FileNotFoundError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


class Api(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-api-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key).start(cls.cls_procs)
        cls.client_py = os.path.join(cls.cls_tmp, "client.py")
        with open(cls.client_py, "w") as f:
            f.write(CLIENT)

    # -- helpers --------------------------------------------------------------------------------

    def new_path(self):
        name = helpers.rand_token(16) + ".txt"
        self.nginx.write_file(name, helpers.rand_printable(32))
        return "/" + name

    def start_client(self, *extra):
        p = self.procs.popen([helpers.DEBIAN_PYTHON, self.client_py, str(self.nginx.port),
                              self.cert, *extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        return p, helpers.LineReader(p.stdout, f"client {p.pid}")

    def request(self, client, path):
        p, reader = client
        p.stdin.write(path.encode() + b"\n")
        p.stdin.flush()
        r = reader.get_json()
        self.assertEqual((r["path"], r["status"]), (path, 200), r)
        return r

    def request_line(self, path):
        return f"GET {path} HTTP/1.1\r\n".encode()

    def blocks_with(self, run, needle, pid=None, since=0):
        return [b for b in run.blocks() if b.offset >= since and needle in b.payload
                and (pid is None or b.pid == pid)]

    def wait_captured(self, run, needle, pid, timeout=5.0):
        found = helpers.wait_until(lambda: self.blocks_with(run, needle, pid), timeout)
        self.assertTrue(found, f"{needle!r} of pid {pid} not captured\n"
                               f"{summarize(run.blocks())}\n{run.describe()}")
        return found

    def listen_args(self):
        self.api_port = helpers.free_port()
        return ["--listen", f"127.0.0.1:{self.api_port}"]

    def status(self):
        code, body = api(self.api_port, "GET", "/status")
        self.assertEqual(code, 200, body)
        return body["data"]

    # -- tests ----------------------------------------------------------------------------------

    def test_reload_to_another_pid(self):
        a, b = self.start_client(), self.start_client()
        pid_a, pid_b = a[0].pid, b[0].pid
        with self.run_ecapture(["tls", *self.listen_args(), "--pid", str(pid_a)]) as run:
            pa1, pb1 = self.new_path(), self.new_path()
            self.request(a, pa1)
            self.request(b, pb1)
            self.wait_captured(run, self.request_line(pa1), pid_a)
            run.settle()
            self.assertEqual(select(run.blocks(), pid=pid_b), [],
                             f"pid {pid_b} captured while --pid {pid_a}\n"
                             f"{summarize(run.blocks())}")
            self.assertEqual(self.status()["config"]["pid"], pid_a)

            since = len(run.stdout_bytes())
            code, body = api(self.api_port, "POST", "/tls", {"pid": pid_b})
            self.assertEqual(code, 200, body)
            self.assertEqual((body["code"], body["module_type"], body["msg"]),
                             (0, "openssl", "module tls is running with the new configuration"))
            st = self.status()
            self.assertEqual((st["module"], st["state"], st["config"]["pid"], st["reloads"]),
                             ("tls", "running", pid_b, 1), st)

            pa2, pb2 = self.new_path(), self.new_path()
            self.request(a, pa2)
            self.request(b, pb2)
            got = self.wait_captured(run, self.request_line(pb2), pid_b)
            self.assertEqual(got[0].dst, helpers.ep(self.nginx.port), got[0].header())
            run.settle()
            after = [blk for blk in run.blocks() if blk.offset >= since]
            self.assertEqual([blk.header() for blk in after if blk.pid != pid_b], [],
                             f"only pid {pid_b} may appear after the reload\n{summarize(after)}")
            self.assertEqual(self.blocks_with(run, pa2.encode()), [])
            out = self.status()["output"]
            self.assertEqual((out["dropped_events"], out["dropped_bytes"]), (0, 0), out)
            self.assertGreaterEqual(out["messages"], 4, out)  # pa1 + pb2, request and response
            # The sink stayed open: one stdout, both halves in it, one "capture started" per start.
            self.assertEqual(run.stderr_text().count("capture started"), 2, run.describe())

    def test_invalid_requests_leave_the_capture_running(self):
        with self.run_ecapture(["tls", *self.listen_args()]) as run:
            cases = [
                (b'{"pid": ', 4, "invalid JSON body"),
                ({"capturemode": "bogus"}, 5, "field 'capturemode': invalid value 'bogus'"),
                ({"opensslpath": "/nonexistent/libssl.so.3"}, 5,
                 "field 'opensslpath': cannot use /nonexistent/libssl.so.3: No such file or "
                 "directory"),
                ({"pid": "12"}, 5, "field 'pid': expected a non-negative integer"),
                ({"nosuchfield": 1}, 5, "unknown field 'nosuchfield'"),
                ({"btf_mode": 2}, 5, "field 'btf_mode': 2 (non-CO-RE bytecode) is not shipped"),
            ]
            for body, code, msg in cases:
                status, resp = api(self.api_port, "POST", "/tls", body)
                self.assertEqual((status, resp["code"], resp["module_type"], resp["data"]),
                                 (400, code, "openssl", None), resp)
                self.assertTrue(resp["msg"].startswith(msg), resp)
            status, resp = api(self.api_port, "POST", "/gotls", {"elf_path": "/no/such/go"})
            self.assertEqual((status, resp["code"], resp["module_type"]), (400, 5, "gotls"), resp)
            self.assertTrue(resp["msg"].startswith("field 'elf_path': cannot use /no/such/go"),
                            resp)
            status, resp = api(self.api_port, "POST", "/nosuch", {})
            self.assertEqual((status, resp["code"]), (404, 3), resp)
            # A library that exists but is no OpenSSL: validated, tried, refused, old one back.
            status, resp = api(self.api_port, "POST", "/tls", {"opensslpath": "/bin/true"})
            self.assertEqual((status, resp["code"]), (400, 5), resp)
            self.assertIn("module tls did not start: /bin/true does not export "
                          "SSL_write/SSL_read", resp["msg"])
            self.assertTrue(resp["msg"].endswith("the previous configuration (module tls) is "
                                                 "running again"), resp)
            self.assertEqual(run.stderr_text().count("capture started"), 2,
                             "only the refused library may have restarted the capture")

            st = self.status()
            self.assertEqual((st["module"], st["state"], st["reloads"], st["config"]["pid"]),
                             ("tls", "running", 0, 0), st)
            code, health = api(self.api_port, "GET", "/healthz")
            self.assertEqual((code, health["code"], health["data"]["state"]), (200, 0, "running"))
            since = len(run.stdout_bytes())  # the running module's counters start before this
            client = self.start_client()
            path = self.new_path()
            self.request(client, path)
            captured = self.wait_captured(run, self.request_line(path), client[0].pid)
            self.assertEqual(captured[0].payload[:len(self.request_line(path))],
                             self.request_line(path))
            # Every block printed since came from at least one event the module counted.
            printed = [b for b in run.blocks() if b.offset >= since]
            self.assertGreaterEqual(self.status()["counters"]["events"], len(printed))
        self.assertLess(run.stop_seconds, 1.0, f"SIGINT with --listen\n{run.describe()}")

    def test_fifty_reloads_under_traffic(self):
        traffic_path = self.new_path()
        with self.run_ecapture(["tls", *self.listen_args()]) as run:
            traffic, reader = self.start_client("--loop", traffic_path)
            reader.get_json()
            self.wait_captured(run, self.request_line(traffic_path), traffic.pid)
            self.status()
            # The server closes the status request's connection asynchronously: wait until only
            # the listening socket is left before taking the reference fd table.
            helpers.wait_until(lambda: sum(t.startswith("socket:")
                                           for t in fd_targets(run.pid).values()) == 1, 3)
            fds_before = fd_targets(run.pid)
            links_before = link_ids(run.pid)
            self.assertTrue(links_before, "ecapture holds no BPF link fd")
            seen_links = set(links_before)
            for i in range(50):
                cfg = {"pid": traffic.pid} if i % 2 == 0 else {"pid": 0, "is_hex": i == 49}
                code, body = api(self.api_port, "POST", "/tls", cfg)
                self.assertEqual(code, 200, f"reload {i}: {body}\n{run.describe()}")
                seen_links |= link_ids(run.pid)
            self.assertIsNone(run.proc.poll(), run.describe())
            self.assertIsNone(traffic.poll(), "the traffic client died during the reloads")
            st = self.status()
            self.assertEqual((st["reloads"], st["state"], st["config"]["pid"]), (50, "running", 0))

            # Concurrent requests: one reload at a time, the others are told to retry (503).
            answers = []
            threads = [threading.Thread(target=lambda: answers.append(
                api(self.api_port, "POST", "/tls", {"pid": 0, "is_hex": True})))
                for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            ok = [a for a in answers if a[0] == 200]
            busy = [a for a in answers if a[0] == 503]
            self.assertEqual(len(ok) + len(busy), 4, answers)
            self.assertGreaterEqual(len(ok), 1, answers)
            for _, body in busy:
                self.assertEqual((body["code"], body["msg"]), (
                    6, "another reload is in progress: retry when it has finished"), body)
            self.assertEqual(self.status()["reloads"], 50 + len(ok))

            # Requests keep being captured after the last reload (with is_hex now on).
            since = len(run.stdout_bytes())
            want = self.request_line(traffic_path)

            def hex_requests():
                return [b for b in run.blocks() if b.offset >= since and b.pid == traffic.pid
                        and b.direction == "WRITE" and b.payload.startswith(want)]
            helpers.wait_until(hex_requests, 5)
            got = hex_requests()
            self.assertTrue(got, "the traffic's request not captured after the reloads\n"
                            + run.describe())
            # Printed as a hex dump (is_hex) that decodes to the exact request bytes.
            self.assertEqual([b.hex for b in got], [True] * len(got), summarize(got))

            # API connections are closed by then; the fd table is back to where it was.
            helpers.wait_until(lambda: len(fd_targets(run.pid)) == len(fds_before), 3)
            fds_after = fd_targets(run.pid)
            links_after = link_ids(run.pid)
            self.assertEqual(len(fds_after), len(fds_before),
                             f"fds before {sorted(fds_before.items())}\n"
                             f"after {sorted(fds_after.items())}")
            self.assertEqual(len(links_after), len(links_before))
            listed = helpers.bpf_ids("link")
            self.assertLessEqual(links_after, listed, "our links are missing from bpftool")
            leaked = (seen_links - links_after) & listed
            self.assertEqual(sorted(leaked), [], "links of replaced modules still in bpftool")
        listed = helpers.bpf_ids("link")
        self.assertEqual(sorted(seen_links & listed), [], "links left after exit")

    def test_post_bash_switches_module(self):
        from test_shells import PtyShell, describe, parse_audit
        tok = helpers.rand_token()
        # pid 1 makes no TLS calls: the tls half of stdout stays empty.
        with self.run_ecapture(["tls", "--pid", "1", *self.listen_args()]) as run:
            run.settle()
            since = len(run.stdout_bytes())
            # A left-out pid would keep the command line's --pid 1.
            code, body = api(self.api_port, "POST", "/bash", {"pid": 0, "bashpath": "/bin/bash"})
            self.assertEqual((code, body["code"], body["module_type"], body["msg"]),
                             (200, 0, "bash", "module bash is running with the new configuration"),
                             f"{body}\n{run.describe()}")
            st = self.status()
            self.assertEqual((st["module"], st["state"], st["reloads"], st["config"]["bashpath"],
                              st["config"]["pid"]), ("bash", "running", 1, "/bin/bash", 0), st)
            sh = PtyShell(self, ["/bin/bash", "--norc", "--noprofile", "-i"])
            sh.send(f"echo api_{tok}".encode())
            sh.send(b"false")
            run.settle(quiet=0.7)
            cmds = parse_audit(run.stdout_bytes()[since:])
            mine = [c for c in cmds if c.pid == sh.pid]
            self.assertEqual([(c.kind, c.text, c.status) for c in mine],
                             [("BASH", f"echo api_{tok}".encode(), 0), ("BASH", b"false", 1)],
                             f"{describe(cmds)}\n{run.describe()}")
            # And back to TLS.
            code, body = api(self.api_port, "POST", "/tls", {"pid": 0})
            self.assertEqual((code, body["module_type"]), (200, "openssl"), body)
            self.assertEqual(self.status()["module"], "tls")

    def test_post_gnutls_nss_and_gotls_switch_modules(self):
        """The other TLS modules are reachable over the API: each POST runs it (GET /status), and a
        wrong path is refused with the previous module back."""
        with self.run_ecapture(["tls", "--pid", "1", *self.listen_args()]) as run:
            for path, body, module, mtype, field, value in [
                    ("/gnutls", {"capturemode": "text"}, "gnutls", "gnutls", "capturemode",
                     "text"),
                    ("/nspr", {}, "nss", "nspr", "pid", 1),
                    ("/gotls", {"elf_path": "/usr/bin/hey"}, "gotls", "gotls", "elf_path",
                     "/usr/bin/hey")]:
                code, resp = api(self.api_port, "POST", path, body)
                self.assertEqual((code, resp["code"], resp["module_type"], resp["msg"]),
                                 (200, 0, mtype,
                                  f"module {module} is running with the new configuration"),
                                 f"{resp}\n{run.describe()}")
                st = self.status()
                self.assertEqual((st["module"], st["state"], st["config"][field]),
                                 (module, "running", value), st)
            code, resp = api(self.api_port, "POST", "/gnutls", {"gnutlspath": "/bin/true"})
            self.assertEqual((code, resp["code"]), (400, 5), resp)
            self.assertEqual(self.status()["module"], "gotls")

    def test_non_loopback_needs_a_token(self):
        port = helpers.free_port()
        p = self.procs.popen([helpers.BINARY, "tls", "--listen", f"0.0.0.0:{port}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 2, err)
        self.assertEqual(err.decode(),
                         f"ecapture: --listen 0.0.0.0:{port} is not a loopback address: the "
                         f"configuration API would be open to the network; give a token with "
                         f"--listen-token TOKEN (or ECAPTURE_LISTEN_TOKEN) that clients send as "
                         f"'Authorization: Bearer TOKEN', or listen on 127.0.0.1\n")
        self.assertEqual(out, b"")

        token = helpers.rand_token(20)
        self.api_port = helpers.free_port()
        with self.run_ecapture(["tls", "--listen", f"0.0.0.0:{self.api_port}"],
                               env={"ECAPTURE_LISTEN_TOKEN": token}):
            code, body = api(self.api_port, "GET", "/status")
            self.assertEqual((code, body["code"]), (401, 1), body)
            code, body = api(self.api_port, "POST", "/tls", {"pid": 1}, token="wrong")
            self.assertEqual(code, 401, body)
            code, body = api(self.api_port, "GET", "/status", token=token)
            self.assertEqual((code, body["data"]["reloads"], body["data"]["config"]["pid"]),
                             (200, 0, 0), body)
            code, body = api(self.api_port, "POST", "/tls", {"pid": 1}, token=token)
            self.assertEqual(code, 200, body)

    def test_busy_port_is_a_startup_error(self):
        with self.run_ecapture(["tls", *self.listen_args()]):
            p = self.procs.popen([helpers.BINARY, "tls", "--listen", f"127.0.0.1:{self.api_port}"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            _, err = p.communicate(timeout=10)
            self.assertEqual(p.returncode, 1, err)
            self.assertEqual(err.decode(), f"ecapture: cannot listen on 127.0.0.1:{self.api_port} "
                                           f"(--listen): Address already in use\n")
