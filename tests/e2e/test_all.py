"""`ecapture all`: the tls, gotls, gnutls and nss modules in one run, against real clients.

nginx (OpenSSL) serves random files on 127.0.0.1; curl (OpenSSL), wget (GnuTLS) and tstclnt
(NSS) fetch them; a Go program built here (tests/fixtures/gotls/main.go) POSTs a random body to
its own server, answered with a random body. Text mode: each client's request and response are in
its own WRITE / READ stream exactly once, with its pid, comm and local port. pcap mode: one pcapng
that tshark decrypts alone for the OpenSSL, Go and GnuTLS connections, each packet naming its
sender. keylog mode: one key log with the sessions of every library. The HTTP API reloads `all`
like any module. The per-library flags are refused.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import helpers
from helpers import ep, select, stream, summarize
from test_api import api
import test_gnutls_nss as gn
from test_tls_pcap import tshark_fields
from test_tls_text import NODE_CLIENT

HERE = os.path.dirname(os.path.abspath(__file__))
GO_SOURCE = os.path.join(HERE, "..", "fixtures", "gotls", "main.go")


def build_go(out_dir, name="goclient"):
    """The Go test program, built by Debian's Go; returns its path."""
    out = os.path.join(out_dir, name)
    env = dict(os.environ, GOCACHE=os.path.join("/tmp", "ecap-e2e-gocache"), HOME=out_dir,
               GO111MODULE="off")
    r = subprocess.run(["go", "build", "-o", out, GO_SOURCE], env=env, capture_output=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"go build: {r.stderr.decode(errors='replace')}")
    return out


class All(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_class_nginx("ecap-e2e-all-", log_format=gn.ACCESS_LOG_FORMAT)
        cls.go = build_go(cls.cls_tmp) if shutil.which("go") else None
        cls.node_client = os.path.join(cls.cls_tmp, "client.js")
        with open(cls.node_client, "w") as f:
            f.write(NODE_CLIENT)

    def setUp(self):
        super().setUp()
        if self.go is None:
            self.fail("go is not installed (scripts/setup.sh installs golang-go)")

    # -- clients --------------------------------------------------------------------------------

    new_file = gn.GnutlsNssText.new_file
    server_seen_port = gn.GnutlsNssText.server_seen_port

    def run_client(self, args, comm):
        p = self.procs.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, f"{comm}: {err.decode(errors='replace')[-2000:]}")
        return p.pid, out

    def curl(self):
        path, body = self.new_file()
        out = os.path.join(self.tmp, "curl.out")
        pid, _ = self.run_client(["curl", "-sS", "--http1.1", "--cacert", self.cert, "-o", out,
                                  f"https://127.0.0.1:{self.port}{path}"], "curl")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        return {"comm": "curl", "pid": pid, "path": path, "body": body}

    def wget(self):
        path, body = self.new_file()
        out = os.path.join(self.tmp, "wget.out")
        pid, _ = self.run_client(["wget", "-q", "--ca-certificate", self.cert, "-O", out,
                                  f"https://127.0.0.1:{self.port}{path}"], "wget")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        return {"comm": "wget", "pid": pid, "path": path, "body": body}

    def tstclnt(self):
        path, body = self.new_file()
        req = os.path.join(self.tmp, "req.txt")
        with open(req, "wb") as f:
            f.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                    .encode())
        pid, out = self.run_client(["tstclnt", "-h", "localhost", "-p", str(self.port), "-D",
                                    "-o", "-4", "-A", req], "tstclnt")
        self.assertIn(body, out)
        return {"comm": "tstclnt", "pid": pid, "path": path, "body": body}

    def node(self):
        path, body = self.new_file()
        pid, out = self.run_client(["node", self.node_client, str(self.port), self.cert, path],
                                   "node")
        got = json.loads(out)
        self.assertEqual((got["pid"], got["status"], got["body"]), (pid, 200, body.decode()))
        return {"comm": "node", "pid": pid, "path": path, "body": body}

    def go_both(self):
        """The Go program as server and client in one process, started now: one request."""
        req, resp = helpers.rand_token(24), helpers.rand_token(24)
        pid, out = self.run_client([self.go, "-h1", "-body", req, "-resp", resp], "goclient")
        port = int(out.split(b"LISTEN ", 1)[1].split(b"\n", 1)[0])
        cports = [int(x) for x in re.findall(rb"CLIENTPORT (\d+)", out)]
        self.assertEqual(len(cports), 1, out)
        return {"pid": pid, "port": port, "lport": cports[0], "request": req.encode(),
                "response": resp.encode()}

    def go_server(self, binary=None):
        """The Go program's server, started before ecapture; returns (pid, port, response)."""
        resp = helpers.rand_token(24)
        server = self.procs.popen([binary or self.go, "-mode", "server", "-h1", "-resp", resp],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        port = int(server.stdout.readline().split()[1])
        return server.pid, port, resp.encode()

    def go_client(self, port, resp, binary=None):
        req = helpers.rand_token(24)
        pid, out = self.run_client([binary or self.go, "-mode", "client", "-h1", "-url",
                                    f"https://127.0.0.1:{port}/", "-body", req], "goclient")
        self.assertIn(resp, out)
        cports = [int(x) for x in re.findall(rb"CLIENTPORT (\d+)", out)]
        self.assertEqual(len(cports), 1, out)
        return {"comm": os.path.basename(binary or self.go)[:15], "pid": pid, "port": port,
                "request": req.encode(), "response": resp, "lport": cports[0]}

    # -- checks ---------------------------------------------------------------------------------

    def check_fetch(self, blocks, c):
        """A GET of nginx: the request line once in the client's WRITE stream, the body once in
        its READ stream, every block with the client's pid, comm and exact 4-tuple."""
        dump = summarize(blocks)
        lport = self.server_seen_port(c["path"])
        line = f"GET {c['path']} HTTP/1.1\r\n".encode()
        mine = select(blocks, pid=c["pid"])
        self.assertTrue(mine, f"nothing of {c['comm']} pid {c['pid']}:\n{dump}")
        self.assertEqual(stream(blocks, c["pid"], "WRITE").count(line), 1,
                         f"{c['comm']} request line:\n{dump}")
        self.assertEqual(stream(blocks, c["pid"], "READ").count(c["body"]), 1,
                         f"{c['comm']} response body:\n{dump}")
        for b in mine:
            self.assertEqual(b.comm, c["comm"], b.header())
            if b.direction == "WRITE":
                self.assertEqual((b.src, b.dst), (ep(lport), ep(self.port)), b.header())
            else:
                self.assertEqual((b.src, b.dst), (ep(self.port), ep(lport)), b.header())

    def check_go(self, blocks, c):
        dump = summarize(blocks)
        mine = select(blocks, pid=c["pid"])
        self.assertTrue(mine, f"nothing of the Go client pid {c['pid']}:\n{dump}")
        self.assertEqual(stream(blocks, c["pid"], "WRITE").count(c["request"]), 1, dump)
        self.assertEqual(stream(blocks, c["pid"], "READ").count(c["response"]), 1, dump)
        for b in mine:
            self.assertEqual(b.comm, c["comm"], b.header())
            if b.direction == "WRITE":
                self.assertEqual((b.src, b.dst), (ep(c["lport"]), ep(c["port"])), b.header())
            else:
                self.assertEqual((b.src, b.dst), (ep(c["port"]), ep(c["lport"])), b.header())

    def check_go_both(self, blocks, c):
        """Client and server in one process: the request once on each side of the connection,
        the response too, every block of the process on that exact 4-tuple."""
        dump = summarize(blocks)
        client, server = ep(c["lport"]), ep(c["port"])
        mine = select(blocks, pid=c["pid"])

        def joined(direction, src, dst):
            return b"".join(b.payload for b in mine
                            if (b.direction, b.src, b.dst) == (direction, src, dst))
        self.assertEqual(joined("WRITE", client, server).count(c["request"]), 1, dump)
        self.assertEqual(joined("READ", client, server).count(c["request"]), 1, dump)
        self.assertEqual(joined("WRITE", server, client).count(c["response"]), 1, dump)
        self.assertEqual(joined("READ", server, client).count(c["response"]), 1, dump)
        for b in mine:
            self.assertIn((b.src, b.dst), {(client, server), (server, client)}, b.header())
            self.assertEqual(b.comm, "goclient", b.header())

    def summaries(self, run):
        return re.findall(r"summary: events=(\d+) bytes=(\d+) lost=(\d+)", run.stderr_text())

    # -- tests ----------------------------------------------------------------------------------

    def test_01_text_every_library_once_with_its_pid(self):
        # Every client starts after ecapture: the Go program's file was never run before.
        with self.run_ecapture(["all", "-m", "text"]) as run:
            owned = helpers.owned_bpf_ids(run.pid)
            clients = [self.curl(), self.node(), self.wget(), self.tstclnt()]
            go = self.go_both()
            run.settle(quiet=0.7, timeout=15)
        err = run.stderr_text()
        self.assertEqual(re.findall(r"capture started \((.*)\)", err),
                         ["tls, gotls, gnutls, nss"], run.describe())
        for part in ("tls", "gotls", "gnutls", "nss"):
            self.assertEqual(err.count(f" {part}: hooks ready ("), 1, run.describe())
        blocks = run.blocks()
        for c in clients:
            with self.subTest(client=c["comm"]):
                self.check_fetch(blocks, c)
        self.check_go_both(blocks, go)
        # One summary for the four modules, nothing lost.
        sums = self.summaries(run)
        self.assertEqual(len(sums), 1, run.describe())
        self.assertEqual(sums[0][2], "0", run.describe())
        helpers.assert_bpf_released(self, owned)

    def test_02_pcap_one_file_that_tshark_decrypts_alone(self):
        _, go_port, go_resp = self.go_server()
        pcap = os.path.join(self.tmp, "all.pcapng")
        keys = os.path.join(self.tmp, "all_keys.log")
        args = ["all", "-m", "pcap", "-i", "lo", "-w", pcap, "-k", keys, "tcp", "port",
                str(self.port), "or", "tcp", "port", str(go_port)]
        with self.run_ecapture(args) as run:
            owned = helpers.owned_bpf_ids(run.pid)
            curl, wget = self.curl(), self.wget()
            go = self.go_client(go_port, go_resp)

            def decrypted():
                if not os.path.exists(pcap):
                    return False
                return len(tshark_fields(pcap, ["http.file_data"], "http.response")) >= 3
            helpers.wait_until(decrypted, 15, 0.3)
        err = run.stderr_text()
        self.assertEqual(re.findall(r"all: capture started \(([^;)]*)", err),
                         ["tls, gotls, gnutls"], run.describe())
        self.assertIn("all: nss not running: it captures no keys, so it has no -m pcap (text "
                      "mode only)", err)
        reqs = tshark_fields(pcap, ["http.request.method", "http.request.uri", "frame.comment"],
                             "http.request")
        want = sorted([["GET", curl["path"], f"pid={curl['pid']} comm=curl"],
                       ["GET", wget["path"], f"pid={wget['pid']} comm=wget"],
                       ["POST", "/", f"pid={go['pid']} comm={go['comm']}"]])
        self.assertEqual(sorted(reqs), want, run.describe())
        bodies = {r[0] for r in tshark_fields(pcap, ["http.file_data"], "http.response")}
        for body in (curl["body"], wget["body"], go["response"]):
            self.assertTrue(body.decode() in bodies or body.hex() in bodies, (body, bodies))
        # Each client's own part delivered its keys.
        for c in (curl, wget, go):
            self.assertRegex(err, rf"keys: [^\n]*? pid={c['pid']} comm={c['comm']} ",
                             run.describe())
        helpers.assert_bpf_released(self, owned)

    def test_03_keylog_one_file_with_every_library(self):
        _, go_port, go_resp = self.go_server()
        keys = os.path.join(self.tmp, "all_keys.log")
        with self.run_ecapture(["all", "-m", "keylog", "-k", keys]) as run:
            clients = [self.curl(), self.wget(), self.go_client(go_port, go_resp)]

            def logged():
                return all(f"pid={c['pid']} comm={c['comm']} " in run.stderr_text()
                           for c in clients)
            helpers.wait_until(logged, 10)
        err = run.stderr_text()
        self.assertIn("all: nss not running: it captures no keys, so it has no -m keylog (text "
                      "mode only)", err)
        with open(keys) as f:
            lines = f.read().splitlines()
        randoms = {line.split()[1] for line in lines}
        self.assertEqual(len(lines), len(set((l.split()[0], l.split()[1]) for l in lines)))
        self.assertEqual(oct(os.stat(keys).st_mode & 0o777), "0o600")
        for c in clients:
            m = re.search(rf"keys: [^\n]* pid={c['pid']} comm={c['comm']} client_random=(\w+)",
                          err)
            self.assertIsNotNone(m, run.describe())
            self.assertIn(m.group(1), randoms, f"{c['comm']}: {lines}")

    def test_04_api_reloads_all_and_back(self):
        port = helpers.free_port()
        with self.run_ecapture(["tls", "--listen", f"127.0.0.1:{port}"]) as run:
            code, body = api(port, "POST", "/all", {"capturemode": "text"})
            self.assertEqual((code, body["code"], body["module_type"]), (200, 0, "all"),
                             f"{body}\n{run.describe()}")
            self.assertEqual(body["data"]["module"], "all")
            curl, wget = self.curl(), self.wget()
            run.settle(quiet=0.7, timeout=15)
            code, status = api(port, "GET", "/status")
            self.assertEqual(status["data"]["module"], "all")
            modules = {e["module"] for e in status["data"]["target_report"]}
            self.assertLessEqual(modules, {"tls", "gotls", "gnutls", "nss"}, status)
            code, body = api(port, "POST", "/all", {"opensslpath": "/bin/sh"})
            self.assertEqual((code, body["code"]), (400, 5), body)
            self.assertEqual(body["msg"],
                             "field 'opensslpath': the all module hooks every TLS library it "
                             "finds and takes no path or version for one; POST to that "
                             "library's own endpoint instead")
            code, body = api(port, "POST", "/tls", {})
            self.assertEqual((code, body["code"], body["data"]["module"]), (200, 0, "tls"), body)
        blocks = run.blocks()
        self.check_fetch(blocks, curl)
        self.check_fetch(blocks, wget)
        self.assertIn("reload: closing module tls and starting module all", run.stderr_text())
        self.assertIn("reload: closing module all and starting module tls", run.stderr_text())

    def test_05_per_library_flags_are_refused(self):
        for flag, single in (("--libssl", "ecapture tls --libssl PATH"),
                             ("-e", "ecapture gotls -e PATH"),
                             ("--gnutls", "ecapture gnutls --gnutls PATH"),
                             ("--nspr", "ecapture nss --nspr PATH")):
            with self.subTest(flag=flag):
                r = subprocess.run([helpers.BINARY, "all", flag, helpers.SYSTEM_LIBSSL],
                                   capture_output=True, timeout=30)
                err = r.stderr.decode(errors="replace").strip().splitlines()
                self.assertNotEqual(r.returncode, 0, err)
                self.assertEqual(len(err), 1, err)
                long_flag = "--elfpath" if flag == "-e" else flag
                self.assertEqual(err[0], f"ecapture: {long_flag}: `ecapture all` hooks every TLS "
                                 f"library it finds and takes no path or version for one; to "
                                 f"capture one target use {single}")


if __name__ == "__main__":
    unittest.main()
