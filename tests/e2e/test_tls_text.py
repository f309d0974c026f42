"""`ecapture tls` text output against real clients and nginx on 127.0.0.1.

Every test asserts exact bytes, pids and ports. One nginx (TLS 1.2+1.3) serves the whole class.
"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

import helpers
from helpers import ep, select, split_http, stream, summarize

# A python (Debian /usr/bin/python3.11, ssl module: SSL_write_ex/SSL_read_ex) HTTPS client.
# argv: port cafile path[,path...] [--wait-before] [--wait-between]
# JSON lines on stdout: {"event":"connected",...}, {"event":"waiting"}, {"event":"response",...}
PY_CLIENT = textwrap.dedent("""\
    import http.client, json, os, ssl, sys
    port, cafile, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
    flags = set(sys.argv[4:])
    def say(**kw):
        print(json.dumps(kw), flush=True)
    def wait():
        say(event="waiting")
        if sys.stdin.readline() == "":
            sys.exit("stdin closed")
    if "--wait-before" in flags:
        wait()
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    conn.connect()
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    say(event="connected", pid=os.getpid(), comm=comm, port=conn.sock.getsockname()[1],
        fd=conn.sock.fileno(), version=conn.sock.version())
    for i, path in enumerate(paths):
        if i > 0 and "--wait-between" in flags:
            wait()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        say(event="response", path=path, status=r.status, body=body.decode("latin-1"),
            port=conn.sock.getsockname()[1])
    conn.close()
""")

NODE_CLIENT = textwrap.dedent("""\
    const https = require('https'), fs = require('fs');
    const [port, ca, path] = process.argv.slice(2);
    const req = https.get({host: '127.0.0.1', port: +port, path, ca: fs.readFileSync(ca),
                           agent: false}, (res) => {
      const localPort = res.socket.localPort;
      const fd = res.socket._handle ? res.socket._handle.fd : -1;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        console.log(JSON.stringify({pid: process.pid, port: localPort, fd, status: res.statusCode,
                                    body: Buffer.concat(chunks).toString('latin1')}));
      });
    });
    req.on('error', (e) => { console.error(e); process.exit(1); });
""")

FOUR_MIB = 4 * 1024 * 1024

# An OpenSSL client that peeks before every read: SSL_peek and SSL_peek_ex return bytes that the
# next SSL_read returns again, so only the reads may be reported.
# argv: port cafile path. Prints "pid local_port" on stdout, then the response bytes.
PEEK_CLIENT = textwrap.dedent("""\
    #include <arpa/inet.h>
    #include <netinet/in.h>
    #include <openssl/ssl.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <unistd.h>
    int main(int argc, char **argv) {
      SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
      if (!SSL_CTX_load_verify_locations(ctx, argv[2], NULL)) return 2;
      int s = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = {0};
      a.sin_family = AF_INET;
      a.sin_port = htons(atoi(argv[1]));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(s, (struct sockaddr *)&a, sizeof(a))) return 3;
      socklen_t len = sizeof(a);
      getsockname(s, (struct sockaddr *)&a, &len);
      printf("%d %d\\n", getpid(), ntohs(a.sin_port));
      fflush(stdout);
      SSL *ssl = SSL_new(ctx);
      SSL_set_fd(ssl, s);
      if (SSL_connect(ssl) != 1) return 4;
      char req[512];
      int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\\r\\nHost: 127.0.0.1:%s\\r\\n"
                       "Connection: close\\r\\n\\r\\n", argv[3], argv[1]);
      if (SSL_write(ssl, req, n) != n) return 5;
      char buf[4096];
      for (int i = 0;; i++) {
        size_t got = 0;
        int p = (i % 2) ? SSL_peek(ssl, buf, 100) : (SSL_peek_ex(ssl, buf, 100, &got) ? 1 : 0);
        if (p <= 0) break;
        int r = SSL_read(ssl, buf, sizeof(buf));
        if (r <= 0) break;
        fwrite(buf, 1, r, stdout);
      }
      fflush(stdout);
      return 0;
    }
""")


class TlsText(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-nginx-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key).start(cls.cls_procs)
        cls.port = cls.nginx.port
        cls.py_client = os.path.join(cls.cls_tmp, "client.py")
        with open(cls.py_client, "w") as f:
            f.write(PY_CLIENT)

    # -- helpers --------------------------------------------------------------------------------

    def new_file(self, size=40, suffix=".txt"):
        """A static file with a random name and random printable body; returns (path, body)."""
        name = helpers.rand_token(16) + suffix
        body = helpers.rand_printable(size)
        self.nginx.write_file(name, body)
        return "/" + name, body

    def curl_args(self, path, out, extra=()):
        return ["curl", "-sS", "-v", "--cacert", self.cert, "-o", out, "-w", "%{local_port}",
                *extra, f"https://127.0.0.1:{self.port}{path}"]

    def finish_curl(self, p, timeout=60):
        out, err = p.communicate(timeout=timeout)
        self.assertEqual(p.returncode, 0, f"curl failed: {err.decode(errors='replace')[-2000:]}")
        return int(out.decode().strip()), helpers.curl_request_headers(err)

    def curl(self, path, extra=(), out=None):
        """Runs curl; returns (pid, local port, exact request head, response body)."""
        out = out or os.path.join(self.tmp, "curl.out." + helpers.rand_token(6))
        p = self.procs.popen(self.curl_args(path, out, extra), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        lport, head = self.finish_curl(p)
        with open(out, "rb") as f:
            body = f.read()
        return p.pid, lport, head, body

    def expected_prefix(self, path):
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n".encode()

    def start_py_client(self, paths, *flags):
        with open(os.path.join(self.tmp, "py_client.err"), "wb") as err:
            p = self.procs.popen([helpers.DEBIAN_PYTHON, self.py_client, str(self.port),
                                  self.cert, ",".join(paths), *flags],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        return p, helpers.LineReader(p.stdout, "python client")

    def wait_exit(self, p, timeout=30):
        rc = p.wait(timeout=timeout)
        self.assertEqual(rc, 0, f"client pid {p.pid} exited {rc}")

    def assert_response(self, data, body, what):
        head, got = split_http(data)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), f"{what}: head {head[:200]!r}")
        self.assertEqual(len(got), len(body), f"{what}: body length")
        self.assertEqual(got, body, f"{what}: body bytes")

    # -- tests ----------------------------------------------------------------------------------

    def test_01_curl_get_pid_tuple_and_nginx_side(self):
        path, body = self.new_file(40)
        with self.run_ecapture(["tls"]) as run:
            pid, lport, head, got = self.curl(path)
            self.assertEqual(got, body)
            run.settle()
        blocks = run.blocks()
        dump = summarize(blocks)
        prefix = self.expected_prefix(path)
        self.assertTrue(head.startswith(prefix), f"curl -v head unexpected: {head!r}")
        ua = helpers.header_value(head, "User-Agent")
        self.assertTrue(ua and ua.startswith("curl/"), head)

        # curl's request: one WRITE block starting with the request line and Host, with its UA.
        writes = select(blocks, pid=pid, direction="WRITE")
        first = [b for b in writes if b.payload.startswith(prefix)]
        self.assertEqual(len(first), 1, f"no single WRITE block of curl pid {pid} starting with "
                                        f"{prefix!r}:\n{dump}")
        w = first[0]
        self.assertEqual(w.comm, "curl")
        self.assertIn(f"User-Agent: {ua}\r\n".encode(), w.payload)
        self.assertEqual(w.src, ep(lport), f"WRITE src must be curl's local endpoint: {w.header()}")
        self.assertEqual(w.dst, ep(self.port), w.header())
        self.assertEqual(w.uid, os.getuid())
        self.assertEqual(stream(blocks, pid, "WRITE", w.fd), head,
                         "curl's WRITE stream must be exactly the request it sent")

        # curl's response: a READ block with the body, mirrored tuple, same fd.
        reads = [b for b in select(blocks, pid=pid, direction="READ") if body in b.payload]
        self.assertGreaterEqual(len(reads), 1, f"no READ block of curl pid {pid} with the body "
                                               f"{body!r}:\n{dump}")
        r = reads[0]
        self.assertEqual((r.comm, r.fd, r.src, r.dst), ("curl", w.fd, ep(self.port), ep(lport)),
                         r.header())
        self.assert_response(stream(blocks, pid, "READ", w.fd), body, "curl READ stream")

        # nginx's side of the same connection: mirrored tuples, worker pid.
        workers = self.nginx.worker_pids()
        n_reads = [b for b in blocks if b.comm == "nginx" and b.direction == "READ"
                   and b.payload.startswith(prefix)]
        self.assertEqual(len(n_reads), 1, f"no single nginx READ block with the request:\n{dump}")
        nr = n_reads[0]
        self.assertIn(nr.pid, workers, nr.header())
        self.assertEqual(nr.uid, helpers.read_uid(nr.pid), nr.header())
        self.assertEqual((nr.src, nr.dst), (ep(lport), ep(self.port)), nr.header())
        self.assertEqual(nr.payload, head)
        n_writes = [b for b in blocks if b.comm == "nginx" and b.direction == "WRITE"
                    and body in b.payload]
        self.assertGreaterEqual(len(n_writes), 1, f"no nginx WRITE block with the body:\n{dump}")
        nw = n_writes[0]
        self.assertEqual((nw.pid, nw.fd), (nr.pid, nr.fd), nw.header())
        self.assertEqual((nw.src, nw.dst), (ep(self.port), ep(lport)), nw.header())

    def test_02_python_ssl_ex(self):
        path, body = self.new_file(40)
        with self.run_ecapture(["tls"]) as run:
            p, lines = self.start_py_client([path])
            conn = lines.get_json()
            resp = lines.get_json()
            self.wait_exit(p)
            run.settle()
        self.assertEqual(conn["pid"], p.pid)
        self.assertEqual((resp["status"], resp["body"].encode("latin-1")), (200, body))
        blocks = run.blocks()
        dump = summarize(blocks)
        prefix = self.expected_prefix(path)
        writes = [b for b in select(blocks, pid=p.pid, direction="WRITE")
                  if b.payload.startswith(prefix)]
        self.assertEqual(len(writes), 1, f"python pid {p.pid}: no single WRITE block starting "
                                         f"with {prefix!r}:\n{dump}")
        w = writes[0]
        self.assertEqual(w.comm, conn["comm"])
        self.assertEqual((w.src, w.dst), (ep(conn["port"]), ep(self.port)), w.header())
        self.assertEqual(w.fd, conn["fd"], w.header())
        req = stream(blocks, p.pid, "WRITE", w.fd)
        self.assertTrue(req.startswith(prefix) and req.endswith(b"\r\n\r\n")
                        and req.count(b"GET ") == 1, f"python WRITE stream: {req!r}")
        reads = [b for b in select(blocks, pid=p.pid, direction="READ") if body in b.payload]
        self.assertGreaterEqual(len(reads), 1, f"python pid {p.pid}: no READ with body:\n{dump}")
        self.assertEqual((reads[0].src, reads[0].dst), (ep(self.port), ep(conn["port"])))
        self.assert_response(stream(blocks, p.pid, "READ", w.fd), body, "python READ stream")

    def test_03_large_bodies_4mib(self):
        # Upload: 4 MiB of base64 (printable) as the POST body.
        upload = base64.b64encode(os.urandom(FOUR_MIB * 3 // 4))
        self.assertEqual(len(upload), FOUR_MIB)
        up_file = os.path.join(self.tmp, "upload.bin")
        with open(up_file, "wb") as f:
            f.write(upload)
        # Download: a 4 MiB static file of random printable bytes.
        down_path = "/" + helpers.rand_token(16) + ".bin"
        down_body = base64.b64encode(os.urandom(FOUR_MIB * 3 // 4))
        self.nginx.write_file(down_path[1:], down_body)

        # Default ring buffer size (no --mapsize): a 4 MiB transfer must not lose events.
        with self.run_ecapture(["tls"]) as run:
            up_pid, up_port, up_head, up_resp = self.curl(
                "/upload", extra=["-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                                  "--data-binary", "@" + up_file])
            self.assertEqual(up_resp, b"uploaded\n")
            down_pid, down_port, down_head, got = self.curl(down_path)
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(down_body).hexdigest())
            run.settle(quiet=1.0, timeout=20)
        summary = run.summary()
        blocks = run.blocks()

        # curl's request, concatenated: exactly the head it sent + the 4 MiB body.
        sent = stream(blocks, up_pid, "WRITE")
        self.assertTrue(sent.startswith(b"POST /upload HTTP/1.1\r\n"),
                        f"upload WRITE stream starts {sent[:200]!r}; summary {summary}")
        self.assertEqual(helpers.header_value(up_head, "Content-Length"), str(FOUR_MIB))
        head, body = split_http(sent)
        self.assertEqual(head, up_head)
        self.assertEqual(len(body), FOUR_MIB,
                         f"captured upload body length (summary {summary}, "
                         f"{len(select(blocks, pid=up_pid, direction='WRITE'))} WRITE blocks)")
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(upload).hexdigest(),
                         "sha256 of the captured upload body")
        self.assert_response(stream(blocks, up_pid, "READ"), b"uploaded\n", "upload response")

        # The 4 MiB download, concatenated READ payloads of curl.
        recv = stream(blocks, down_pid, "READ")
        head, body = split_http(recv)
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head[:200])
        self.assertEqual(helpers.header_value(head, "Content-Length"), str(FOUR_MIB))
        self.assertEqual(len(body), FOUR_MIB,
                         f"captured download body length (summary {summary}, "
                         f"{len(select(blocks, pid=down_pid, direction='READ'))} READ blocks)")
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(down_body).hexdigest(),
                         "sha256 of the captured download body")
        self.assertEqual(stream(blocks, down_pid, "WRITE"), down_head)
        self.assertIsNotNone(summary, "no summary line on stderr")
        self.assertEqual(summary[2], 0, f"lost events: summary {summary}")

    def test_04_connection_opened_before_capture(self):
        path1, body1 = self.new_file(40)
        path2, body2 = self.new_file(40)
        p, lines = self.start_py_client([path1, path2], "--wait-between")
        conn = lines.get_json()
        first = lines.get_json()
        self.assertEqual((first["status"], first["body"].encode("latin-1")), (200, body1))
        self.assertEqual(lines.get_json()["event"], "waiting")
        with self.run_ecapture(["tls"]) as run:
            p.stdin.write(b"go\n")
            p.stdin.flush()
            second = lines.get_json()
            self.wait_exit(p)
            run.settle()
        self.assertEqual((second["status"], second["body"].encode("latin-1")), (200, body2))
        self.assertEqual(second["port"], conn["port"], "the client must have reused its connection")
        blocks = run.blocks()
        dump = summarize(blocks)
        prefix = self.expected_prefix(path2)
        writes = [b for b in blocks if b.direction == "WRITE" and b.payload.startswith(prefix)]
        self.assertEqual(len(writes), 1, f"no single WRITE block with the second request:\n{dump}")
        w = writes[0]
        self.assertEqual(w.pid, p.pid, w.header())
        self.assertEqual(w.fd, conn["fd"], w.header())
        self.assertEqual((w.src, w.dst), (ep(conn["port"]), ep(self.port)), w.header())
        reads = [b for b in select(blocks, pid=p.pid, direction="READ") if body2 in b.payload]
        self.assertGreaterEqual(len(reads), 1, f"no READ block with the second body:\n{dump}")
        self.assertEqual((reads[0].src, reads[0].dst), (ep(self.port), ep(conn["port"])),
                         reads[0].header())
        out = run.stdout_bytes()
        self.assertNotIn(path1.encode(), out, "the first request happened before capture started")

    def test_05_pid_filter(self):
        path_a, body_a = self.new_file(40)
        path_b, body_b = self.new_file(40)
        out_a = os.path.join(self.tmp, "a.out")
        out_b = os.path.join(self.tmp, "b.out")
        # Client A: a shell that waits for a line, then execs curl (same pid).
        a = self.procs.popen(["/bin/sh", "-c", 'read go; exec "$@"', "sh",
                              *self.curl_args(path_a, out_a)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self.run_ecapture(["tls", "--pid", str(a.pid)]) as run:
            b = self.procs.popen(self.curl_args(path_b, out_b), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            a.stdin.write(b"go\n")
            a.stdin.flush()  # communicate() closes it
            a_port, a_head = self.finish_curl(a)
            b_port, b_head = self.finish_curl(b)
            run.settle()
        with open(out_a, "rb") as f:
            self.assertEqual(f.read(), body_a)
        with open(out_b, "rb") as f:
            self.assertEqual(f.read(), body_b)
        out = run.stdout_bytes()
        blocks = run.blocks()
        dump = summarize(blocks)
        others = sorted({(b.pid, b.comm) for b in blocks if b.pid != a.pid})
        self.assertEqual(others, [], f"--pid {a.pid}: blocks of other processes:\n{dump}")
        self.assertNotIn(path_b.encode(), out, "client B's path must not be captured")
        self.assertNotIn(body_b, out, "client B's body must not be captured")
        self.assertEqual(stream(blocks, a.pid, "WRITE"), a_head, f"client A's request:\n{dump}")
        w = select(blocks, pid=a.pid, direction="WRITE")[0]
        self.assertEqual((w.comm, w.src, w.dst), ("curl", ep(a_port), ep(self.port)), w.header())
        self.assert_response(stream(blocks, a.pid, "READ"), body_a, "client A READ stream")

    def node_capture(self):
        """Runs the node client under `ecapture tls --libssl /usr/bin/node`; returns
        (client's report, node pid, blocks)."""
        path, body = self.new_file(40)
        script = os.path.join(self.tmp, "client.js")
        with open(script, "w") as f:
            f.write(NODE_CLIENT)
        with self.run_ecapture(["tls", "--libssl", "/usr/bin/node"]) as run:
            p = self.procs.popen(["/usr/bin/node", script, str(self.port), self.cert, path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
            run.settle()
        res = json.loads(out)
        self.assertEqual((res["pid"], res["status"], res["body"].encode("latin-1")),
                         (p.pid, 200, body))
        res["path"], res["body"] = path, body
        blocks = run.blocks()
        mine = select(blocks, pid=p.pid)
        self.assertTrue(mine, f"no block of node pid {p.pid}:\n{summarize(blocks)}")
        return res, p.pid, blocks

    @unittest.skipUnless(os.access("/usr/bin/node", os.X_OK), "/usr/bin/node missing")
    def test_06a_node_static_openssl(self):
        res, pid, blocks = self.node_capture()
        dump = summarize(blocks)
        self.assertEqual({b.comm for b in select(blocks, pid=pid)}, {"node"}, dump)
        sent = stream(blocks, pid, "WRITE")
        line = f"GET {res['path']} HTTP/1.1\r\n".encode()
        self.assertTrue(sent.startswith(line), f"node WRITE stream: {sent[:300]!r}\n{dump}")
        self.assertEqual(sent.count(line), 1, f"request captured more than once: {sent!r}")
        head, _ = split_http(sent)
        self.assertIn(f"\r\nHost: 127.0.0.1:{self.port}\r\n".encode(), head)
        self.assert_response(stream(blocks, pid, "READ"), res["body"], "node READ stream")

    @unittest.skipUnless(os.access("/usr/bin/node", os.X_OK), "/usr/bin/node missing")
    def test_06b_node_fd_and_tuple(self):
        """node's TLS runs over memory BIOs: no socket syscall happens inside SSL_write/SSL_read.
        DESIGN §5: every TLS data event still carries the connection's fd and 4-tuple."""
        res, pid, blocks = self.node_capture()
        for b in select(blocks, pid=pid):
            self.assertEqual(b.fd, res["fd"], f"node's socket is fd {res['fd']}: {b.header()}")
            local, peer = ep(res["port"]), ep(self.port)
            want = (local, peer) if b.direction == "WRITE" else (peer, local)
            self.assertEqual((b.src, b.dst), want, b.header())

    def test_07a_hex(self):
        path, body = self.new_file(40)
        with self.run_ecapture(["tls", "--hex"]) as run:
            pid, lport, head, got = self.curl(path)
            self.assertEqual(got, body)
            run.settle()
        blocks = run.blocks()
        dump = summarize(blocks)
        writes = select(blocks, pid=pid, direction="WRITE")
        self.assertTrue(writes, f"no WRITE block of curl pid {pid}:\n{dump}")
        for b in writes + select(blocks, pid=pid, direction="READ"):
            self.assertTrue(b.hex, f"--hex: block without the hex flag: {b.header()}")
        self.assertEqual(stream(blocks, pid, "WRITE"), head)
        self.assertEqual((writes[0].src, writes[0].dst), (ep(lport), ep(self.port)))
        self.assert_response(stream(blocks, pid, "READ"), body, "curl READ stream (hex)")

    def test_07b_tsize(self):
        path, body = self.new_file(40)
        with self.run_ecapture(["tls", "-t", "10"]) as run:
            pid, lport, head, got = self.curl(path)
            self.assertEqual(got, body)
            run.settle()
        blocks = run.blocks()
        dump = summarize(blocks)
        writes = select(blocks, pid=pid, direction="WRITE")
        self.assertEqual(len(writes), 1, f"curl pid {pid} WRITE blocks:\n{dump}")
        w = writes[0]
        self.assertEqual((w.length, w.shown, w.payload), (len(head), 10, head[:10]), w.header())
        self.assertEqual(run.stdout_bytes()[w.offset:].split(b"\n", 1)[1][:11], head[:10] + b"\n")
        reads = select(blocks, pid=pid, direction="READ")
        self.assertTrue(reads, dump)
        for b in blocks:
            self.assertLessEqual(len(b.payload), 10, b.header())
            if b.length > 10:
                self.assertEqual(b.shown, 10, b.header())


    def test_08_uid_filter(self):
        """--uid of nginx's workers: only their blocks, never curl's (uid 0)."""
        path, body = self.new_file(40)
        uid = helpers.read_uid(self.nginx.worker_pids()[0])
        self.assertNotEqual(uid, os.getuid(), "nginx workers must run as another user")
        with self.run_ecapture(["tls", "--uid", str(uid)]) as run:
            pid, lport, head, got = self.curl(path)
            self.assertEqual(got, body)
            run.settle()
        blocks = run.blocks()
        self.assertEqual(select(blocks, pid=pid), [], summarize(blocks))
        nginx_reads = [b for b in blocks if b.direction == "READ" and b.payload == head]
        self.assertEqual(len(nginx_reads), 1, summarize(blocks))
        self.assertEqual((nginx_reads[0].uid, nginx_reads[0].src), (uid, ep(lport)))
        self.assertTrue(all(b.uid == uid for b in blocks), summarize(blocks))

    def test_09_perf_buffer_and_perf_uprobes(self):
        """The paths for kernels without ring buffers and uprobe_multi links capture the same."""
        path, body = self.new_file(40)
        env = {"ECAPTURE_FORCE_PERFBUF": "1", "ECAPTURE_FORCE_PERF_UPROBES": "1"}
        with self.run_ecapture(["tls"], env=env) as run:
            pid, lport, head, got = self.curl(path)
            self.assertEqual(got, body)
            run.settle()
        self.assertIn("perf buffer", run.stderr_text())
        self.assertIn("perf-event uprobes", run.stderr_text())
        blocks = run.blocks()
        writes = select(blocks, pid=pid, direction="WRITE")
        self.assertEqual(len(writes), 1, summarize(blocks))
        self.assertEqual((writes[0].payload, writes[0].src, writes[0].dst),
                         (head, ep(lport), ep(self.port)))
        self.assert_response(stream(blocks, pid, "READ", writes[0].fd), body, "curl READ stream")

    def test_11_pid_in_another_mount_namespace(self):
        """A container's view: the client runs in its own mount namespace, on a copy of libssl
        that exists only there. `ecapture tls --pid P` (no --libssl) must find and hook that copy
        through /proc/P/root, and capture the exact request with the client's pid and port."""
        if shutil.which("unshare") is None:
            self.skipTest("unshare missing (util-linux)")
        private = os.path.join(self.tmp, "private-lib")
        os.mkdir(private)
        libdir = "/usr/lib/x86_64-linux-gnu"
        script = (f"mount -t tmpfs ecap-test {private} && cp {libdir}/libssl.so.3 "
                  f"{libdir}/libcrypto.so.3 {private}/ && LD_LIBRARY_PATH={private} exec "
                  f'"$@"')
        path, body = self.new_file(40)
        with open(os.path.join(self.tmp, "ns_client.err"), "wb") as err:
            p = self.procs.popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                  script, "sh", helpers.DEBIAN_PYTHON, self.py_client,
                                  str(self.port), self.cert, path, "--wait-before"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        lines = helpers.LineReader(p.stdout, "namespaced python client")
        self.assertEqual(lines.get_json()["event"], "waiting")
        self.assertEqual(os.listdir(private), [], "the copy must not be visible from here")
        copy = f"/proc/{p.pid}/root{private}/libssl.so.3"
        with self.run_ecapture(["tls", "--pid", str(p.pid)]) as run:
            self.assertIn(f"library: {copy} ", run.stderr_text())
            p.stdin.write(b"go\n")
            p.stdin.flush()
            conn = lines.get_json()
            resp = lines.get_json()
            self.wait_exit(p)
            run.settle()
        self.assertEqual((resp["status"], resp["body"].encode("latin-1")), (200, body))
        self.assertEqual(conn["pid"], p.pid)
        blocks = run.blocks()
        writes = select(blocks, pid=p.pid, direction="WRITE")
        self.assertEqual(len(writes), 1, summarize(blocks))
        self.assertTrue(writes[0].payload.startswith(self.expected_prefix(path)), writes[0].header())
        self.assertEqual((writes[0].src, writes[0].dst), (ep(conn["port"]), ep(self.port)))
        self.assert_response(stream(blocks, p.pid, "READ"), body, "namespaced client READ")

    def test_10_ssl_peek_not_double_counted(self):
        src = os.path.join(self.tmp, "peek.c")
        exe = os.path.join(self.tmp, "peek_client")
        with open(src, "w") as f:
            f.write(PEEK_CLIENT)
        subprocess.run(["gcc", "-O1", "-o", exe, src, "-lssl", "-lcrypto"], check=True,
                       timeout=120)
        path, body = self.new_file(20000)
        with self.run_ecapture(["tls"]) as run:
            p = self.procs.popen([exe, str(self.port), self.cert, path], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            run.settle()
        first, response = out.split(b"\n", 1)
        pid, lport = map(int, first.split())
        self.assertEqual(pid, p.pid)
        self.assert_response(response, body, "peek client's stdout")
        blocks = run.blocks()
        mine = select(blocks, pid=pid)
        self.assertTrue(all((b.src, b.dst) == (ep(self.port), ep(lport)) for b in mine
                            if b.direction == "READ"), summarize(mine))
        # Every byte once: the READ stream is exactly what SSL_read returned, no peeked copy.
        self.assertEqual(stream(blocks, pid, "READ"), response, summarize(mine))
        self.assertEqual(stream(blocks, pid, "WRITE"),
                         f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                         "Connection: close\r\n\r\n".encode())


if __name__ == "__main__":
    unittest.main()
