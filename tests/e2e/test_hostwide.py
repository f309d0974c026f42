"""Host-wide `ecapture tls` (no --libssl, no --pid): every OpenSSL in use is hooked, also in
processes and libraries that appear after the start, in other mount namespaces, and released
again when nobody uses it.

A "copy namespace" is a private mount namespace (`unshare -m`) where the system libssl.so.3 and
libcrypto.so.3 are bind-mounted over by fresh copies: the same paths, other inodes, the way a
container image brings its own OpenSSL. Every test makes new copies, so the kernel side has never
seen them: the first mapping stops the process until its hooks are attached.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import unittest
import urllib.request

import helpers
from helpers import ep, select, split_http
from test_tls_text import NODE_CLIENT, PY_CLIENT

LIBDIR = os.path.dirname(helpers.SYSTEM_LIBSSL)

# A python client that imports ssl (dlopen of _ssl, hence libssl) only when told to.
LATE_PY_CLIENT = textwrap.dedent("""\
    import json, os, sys
    print(json.dumps({"event": "ready", "pid": os.getpid()}), flush=True)
    if sys.stdin.readline() == "":
        sys.exit("stdin closed")
    import http.client, ssl
    port, cafile, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    conn.connect()
    lport = conn.sock.getsockname()[1]
    conn.request("GET", path)
    body = conn.getresponse().read()
    print(json.dumps({"event": "response", "port": lport, "body": body.decode("latin-1")}),
          flush=True)
""")

# A C client that dlopen()s libssl.so.3 after it started, makes one request and exits.
# argv: port cafile path. Prints "pid local_port" then the response.
DLOPEN_CLIENT = textwrap.dedent("""\
    #include <arpa/inet.h>
    #include <dlfcn.h>
    #include <netinet/in.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <sys/socket.h>
    #include <unistd.h>
    #define SYM(name) void *name = dlsym(h, #name); if (!name) return 10;
    int main(int argc, char **argv) {
      void *h = dlopen("libssl.so.3", RTLD_NOW);
      if (!h) return 9;
      SYM(TLS_client_method) SYM(SSL_CTX_new) SYM(SSL_CTX_load_verify_locations) SYM(SSL_new)
      SYM(SSL_set_fd) SYM(SSL_connect) SYM(SSL_write) SYM(SSL_read)
      void *ctx = ((void *(*)(void *))SSL_CTX_new)(((void *(*)(void))TLS_client_method)());
      if (!((int (*)(void *, const char *, const char *))SSL_CTX_load_verify_locations)(
              ctx, argv[2], NULL)) return 2;
      int s = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = {0};
      a.sin_family = AF_INET;
      a.sin_port = htons(atoi(argv[1]));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(s, (struct sockaddr *)&a, sizeof(a))) return 3;
      socklen_t len = sizeof(a);
      getsockname(s, (struct sockaddr *)&a, &len);
      printf("%d %d\\n", getpid(), ntohs(a.sin_port));
      void *ssl = ((void *(*)(void *))SSL_new)(ctx);
      ((int (*)(void *, int))SSL_set_fd)(ssl, s);
      if (((int (*)(void *))SSL_connect)(ssl) != 1) return 4;
      char req[512];
      int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\\r\\nHost: 127.0.0.1:%s\\r\\n"
                       "Connection: close\\r\\n\\r\\n", argv[3], argv[1]);
      if (((int (*)(void *, const void *, int))SSL_write)(ssl, req, n) != n) return 5;
      char buf[4096];
      int r;
      while ((r = ((int (*)(void *, void *, int))SSL_read)(ssl, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, r, stdout);
      return 0;
    }
""")


def api_status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=30) as r:
        return json.loads(r.read())["data"]


def owned_maps(pid):
    """{map name: id} of the BPF maps process `pid` holds open."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.add(int(line.split(":")[1]))
        except OSError:
            continue
    res = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, timeout=30,
                         check=True)
    return {m["name"]: m["id"] for m in json.loads(res.stdout) if m["id"] in ids}


def map_dump(map_id):
    res = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)],
                         capture_output=True, timeout=60, check=True)
    return json.loads(res.stdout or b"[]")


def key_tgid(entry, name):
    """The process of a map entry: the first u32 of the key, or the upper half of a pid_tgid."""
    key = bytes(int(x, 16) for x in entry["key"])
    if name == "tls_active_call":
        return int.from_bytes(key[4:8], "little")
    return int.from_bytes(key[0:4], "little")


class HostWide(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.start_class_nginx("ecap-e2e-hostwide-")
        for name, text in (("client.py", PY_CLIENT), ("late.py", LATE_PY_CLIENT),
                           ("client.js", NODE_CLIENT)):
            with open(os.path.join(cls.cls_tmp, name), "w") as f:
                f.write(text)
        src = os.path.join(cls.cls_tmp, "dlopen_client.c")
        with open(src, "w") as f:
            f.write(DLOPEN_CLIENT)
        cls.dlopen_client = os.path.join(cls.cls_tmp, "dlopen_client")
        subprocess.run(["gcc", "-O1", "-o", cls.dlopen_client, src, "-ldl"], check=True,
                       timeout=120)

    # -- helpers --------------------------------------------------------------------------------

    def script(self, name):
        return os.path.join(self.cls_tmp, name)

    def new_file(self, size=48):
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(size)
        self.nginx.write_file(name, body)
        return "/" + name, body.decode()

    def copy_ns(self, argv):
        """argv in a private mount namespace whose libssl/libcrypto are fresh copies."""
        d = tempfile.mkdtemp(prefix="libs-", dir=self.tmp)
        mounts = []
        for lib in ("libssl.so.3", "libcrypto.so.3"):
            copy = os.path.join(d, lib)
            shutil.copy2(os.path.join(LIBDIR, lib), copy)
            mounts.append(f"mount --bind {copy} {LIBDIR}/{lib}")
        script = " && ".join(mounts) + ' && exec "$@"'
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]

    def popen(self, argv, **kw):
        # A session of its own: no controlling terminal (the kernel side stops only such
        # processes while their hooks are attached).
        return self.procs.popen(argv, start_new_session=True, **kw)

    def curl(self, path, ns=False):
        out = os.path.join(self.tmp, "curl." + helpers.rand_token(6))
        argv = ["curl", "-sS", "--cacert", self.cert, "-o", out, "-w", "%{local_port}",
                f"https://127.0.0.1:{self.port}{path}"]
        p = self.popen(self.copy_ns(argv) if ns else argv, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        o, e = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, e.decode(errors="replace"))
        with open(out, "rb") as f:
            return p.pid, int(o.decode()), f.read()

    def assert_exchange(self, run, pid, lport, path, body, what):
        """One request for `path` written by `pid` from local port `lport` and its response
        (with `body`) read back, each exactly once."""
        request = f"GET {path} HTTP/1.1\r\n".encode()

        def found():
            blocks = helpers.parse_output(run.stdout_bytes(), partial=True)
            w = [b for b in select(blocks, pid=pid, direction="WRITE")
                 if b.payload.startswith(request)]
            r = [b for b in select(blocks, pid=pid, direction="READ")
                 if b.payload.startswith(b"HTTP/1.1 200") and body.encode() in b.payload]
            return w, r
        helpers.wait_until(lambda: all(found()), 15)
        w, r = found()
        blocks = run.blocks()
        self.assertEqual((len(w), len(r)), (1, 1),
                         f"{what}: request/response of pid {pid} not captured once each\n"
                         f"{helpers.summarize(select(blocks, pid=pid))}\n{run.describe()}")
        self.assertEqual((w[0].src, w[0].dst), (ep(lport), ep(self.port)), w[0].header())
        self.assertEqual((r[0].src, r[0].dst), (ep(self.port), ep(lport)), r[0].header())
        self.assertEqual(split_http(r[0].payload)[1], body.encode(), r[0].header())

    def target_lines(self, run):
        return [line for line in run.stderr_text().splitlines() if "tls: target " in line]

    # -- tests ----------------------------------------------------------------------------------

    def test_01_clients_started_after(self):
        """curl, python3, node and a copy-namespace python, each started after ecapture."""
        with self.run_ecapture(["tls"]) as run:
            path, body = self.new_file()
            pid, lport, got = self.curl(path)
            self.assertEqual(got, body.encode())
            self.assert_exchange(run, pid, lport, path, body, "curl")

            for what, argv in (
                    ("python3", [helpers.DEBIAN_PYTHON, self.script("client.py")]),
                    ("copy-namespace python3",
                     self.copy_ns([helpers.DEBIAN_PYTHON, self.script("client.py")]))):
                path, body = self.new_file()
                p = self.popen([*argv, str(self.port), self.cert, path], stdout=subprocess.PIPE)
                lines = [json.loads(x) for x in p.communicate(timeout=60)[0].splitlines()]
                self.assertEqual(p.returncode, 0, what)
                self.assertEqual((lines[0]["pid"], lines[1]["body"]), (p.pid, body), what)
                self.assert_exchange(run, p.pid, lines[1]["port"], path, body, what)

            path, body = self.new_file()
            p = self.popen(["node", self.script("client.js"), str(self.port), self.cert, path],
                           stdout=subprocess.PIPE)
            out = json.loads(p.communicate(timeout=60)[0])
            self.assertEqual((p.returncode, out["pid"], out["body"]), (0, p.pid, body))
            self.assert_exchange(run, p.pid, out["port"], path, body, "node")

    def test_02_short_lived_copy_and_dlopen(self):
        """A copy-namespace client that makes one request and exits at once; a late dlopen."""
        with self.run_ecapture(["tls"]) as run:
            path, body = self.new_file()
            pid, lport, got = self.curl(path, ns=True)
            self.assertEqual(got, body.encode())
            self.assert_exchange(run, pid, lport, path, body, "short-lived copy-namespace curl")

            # The C client dlopen()s a libssl copy nobody mapped before.
            path, body = self.new_file()
            p = self.popen(self.copy_ns([self.dlopen_client, str(self.port), self.cert, path]),
                           stdout=subprocess.PIPE)
            out = p.communicate(timeout=60)[0]
            self.assertEqual(p.returncode, 0, out)
            first, _, response = out.partition(b"\n")
            cpid, lport = map(int, first.split())
            self.assertEqual(cpid, p.pid)
            self.assertEqual(split_http(response)[1], body.encode())
            self.assert_exchange(run, p.pid, lport, path, body, "dlopen client")

            # python3 that imports ssl only after it has been running a while.
            path, body = self.new_file()
            p = self.popen(self.copy_ns([helpers.DEBIAN_PYTHON, self.script("late.py"),
                                         str(self.port), self.cert, path]),
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            reader = helpers.LineReader(p.stdout, "late python")
            self.assertEqual(reader.get_json()["pid"], p.pid)
            with open(f"/proc/{p.pid}/maps") as f:
                self.assertNotIn("libssl", f.read(), "libssl mapped before the late import")
            p.stdin.write(b"go\n")
            p.stdin.flush()
            res = reader.get_json()
            self.assertEqual(res["body"], body)
            self.assertEqual(p.wait(timeout=30), 0)
            self.assert_exchange(run, p.pid, res["port"], path, body, "late import of ssl")

    def test_03_startup_report_and_status(self):
        """Running processes: the system libssl (nginx) and a copy (a waiting python), each a
        target with its version and processes, in the log and in GET /status."""
        p = self.popen(self.copy_ns([helpers.DEBIAN_PYTHON, self.script("client.py"),
                                     str(self.port), self.cert, "/", "--wait-before"]),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        reader = helpers.LineReader(p.stdout, "waiting python")
        self.assertEqual(reader.get_json()["event"], "waiting")
        helpers.wait_until(lambda: "libssl" in open(f"/proc/{p.pid}/maps").read(), 10)
        api_port = helpers.free_port()
        version = subprocess.run(["openssl", "version"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
        with self.run_ecapture(["tls", "--listen", f"127.0.0.1:{api_port}"]) as run:
            lines = self.target_lines(run)
            copy_line = [x for x in lines if f"/proc/{p.pid}/root{LIBDIR}/libssl.so.3" in x]
            self.assertEqual(len(copy_line), 1, "\n".join(lines))
            self.assertIn(f"target {LIBDIR}/libssl.so.3 (from here /proc/{p.pid}/root"
                          f"{LIBDIR}/libssl.so.3): OpenSSL, OpenSSL {version}, 1 process",
                          copy_line[0])
            system = [x for x in lines if f"target {LIBDIR}/libssl.so.3: OpenSSL, OpenSSL "
                      f"{version}, " in x]
            self.assertEqual(len(system), 1, "\n".join(lines))
            st = api_status(api_port)
            report = st["target_report"]
            copies = [t for t in report if t["host_path"] ==
                      f"/proc/{p.pid}/root{LIBDIR}/libssl.so.3"]
            self.assertEqual(len(copies), 1, report)
            self.assertEqual((copies[0]["path"], copies[0]["version"], copies[0]["processes"],
                              copies[0]["pids"], copies[0]["hooked"]),
                             (f"{LIBDIR}/libssl.so.3", f"OpenSSL {version}", 1, [p.pid], True))
            sys_lib = [t for t in report if t["host_path"] == f"{LIBDIR}/libssl.so.3"]
            self.assertEqual(len(sys_lib), 1, report)
            nginx = {self.nginx.proc.pid, *self.nginx.worker_pids()}
            self.assertTrue(nginx <= set(sys_lib[0]["pids"]), (nginx, sys_lib[0]))
            self.assertEqual(sys_lib[0]["processes"], len(sys_lib[0]["pids"]))
        p.stdin.close()
        p.wait(timeout=30)

    def test_04_500_short_lived_clients_released(self):
        """500 curls, one after the other, in a copy namespace (a library only they use), as
        user nobody with --uid (so that other processes on the host cannot change the counts):
        every request and response captured once with its pid; afterwards the copy is released,
        the links are back to their baseline and no map entry of a client is left."""
        n = 500
        uid = 65534
        server_port = helpers.free_port()
        server = self.procs.popen(["gnutls-serv", "--http", "-p", str(server_port),
                                   "--x509certfile", self.cert, "--x509keyfile", self.key],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertTrue(helpers.wait_until(
            lambda: server_port in helpers.listening_ports() or server.poll() is not None, 10)
            and server.poll() is None, "gnutls-serv did not start")
        for d in (self.tmp, self.cls_tmp):
            os.chmod(d, 0o755)
        loop = (f'for i in $(seq {n}); do '
                f'setpriv --reuid {uid} --regid {uid} --clear-groups curl -sS --cacert {self.cert} '
                f'-o /dev/null -w "port %{{local_port}} $i\\n" '
                f'https://127.0.0.1:{server_port}/c/$i & echo "pid $! $i"; wait $! || exit 1; done')
        api_port = helpers.free_port()
        with self.run_ecapture(["tls", "-d", "--uid", str(uid),
                                "--listen", f"127.0.0.1:{api_port}"]) as run:
            baseline = len(helpers.owned_bpf_ids(run.pid)["link"])
            targets0 = len(api_status(api_port)["target_report"])
            p = self.popen(self.copy_ns(["sh", "-c", loop]), stdout=subprocess.PIPE)
            out = p.communicate(timeout=600)[0].decode()
            self.assertEqual(p.returncode, 0, out[-2000:])
            pids, ports = {}, {}
            for line in out.splitlines():
                kind, value, i = line.split()
                (pids if kind == "pid" else ports)[int(i)] = int(value)
            self.assertEqual((len(pids), len(ports)), (n, n))

            # Released after the grace period: the copy leaves the report, the links go.
            def released():
                return (len(api_status(api_port)["target_report"]) == targets0 and
                        len(helpers.owned_bpf_ids(run.pid)["link"]) == baseline)
            helpers.wait_until(released, 10)
            self.assertEqual((len(api_status(api_port)["target_report"]),
                              len(helpers.owned_bpf_ids(run.pid)["link"])),
                             (targets0, baseline), api_status(api_port)["target_report"])
            maps = owned_maps(run.pid)
            client_pids = set(pids.values())
            for name in ("tls_conn_fds", "tls_write_marks", "tls_active_call", "keys_sent"):
                self.assertIn(name, maps, maps)
                left = [e for e in map_dump(maps[name])
                        if key_tgid(e, name) in client_pids]
                self.assertEqual(left, [], f"{name}: entries of exited clients left")
        # gnutls-serv's responses end with the connection: the last ones are complete messages
        # once ecapture has flushed them at its exit.
        def captured():
            blocks = run.blocks()
            writes = {}
            reads = {}
            for b in blocks:
                m = re.match(rb"GET /c/(\d+) HTTP/1.1\r\n", b.payload)
                if b.direction == "WRITE" and m:
                    writes.setdefault(int(m.group(1)), []).append(b)
                elif b.direction == "READ" and b.payload.startswith(b"HTTP/1.0 200 OK\r\n"):
                    reads.setdefault(b.pid, []).append(b)
            return writes, reads
        writes, reads = captured()
        missed = [(i, pids[i], len(writes.get(i, [])), len(reads.get(pids[i], [])))
                  for i in range(1, n + 1) if len(writes.get(i, [])) != 1
                  or len(reads.get(pids[i], [])) != 1]
        self.assertEqual(missed, [], "requests not captured exactly once (request number, pid, "
                                     f"writes, reads): {missed[:20]}\n{run.describe()}")
        for i in range(1, n + 1):
            w, r = writes[i][0], reads[pids[i]][0]
            self.assertEqual((w.pid, w.src, w.dst), (pids[i], ep(ports[i]), ep(server_port)))
            self.assertEqual((r.src, r.dst), (ep(server_port), ep(ports[i])))


    def test_05_sigkill_leaves_no_process_stopped(self):
        """ecapture SIGKILLed while the kernel holds a process for it: its guard process resumes
        that process, then exits. ecapture is SIGSTOPped first, so that the stop is certain to
        be one that ecapture itself never resumes."""
        def procs_where(pred):
            found = []
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    with open(f"/proc/{d}/stat") as f:
                        st = f.read()
                except OSError:
                    continue
                comm = st[st.index("(") + 1:st.rindex(")")]
                fields = st[st.rindex(")") + 2:].split()  # state ppid pgrp session ...
                if pred(int(d), comm, fields):
                    found.append(int(d))
            return found

        with self.run_ecapture(["tls"], expect_rc=-signal.SIGKILL) as run:
            guards = procs_where(lambda pid, comm, f: comm == "ecapture-guard" and
                                 int(f[1]) == run.pid)
            self.assertEqual(len(guards), 1, "one guard process, a child of ecapture")
            os.kill(run.pid, signal.SIGSTOP)
            try:
                path, body = self.new_file()
                p = self.popen(self.copy_ns([self.dlopen_client, str(self.port), self.cert,
                                             path]), stdout=subprocess.PIPE)
                # Its first new file (an executable, or the libssl copy) stops it for ecapture.
                stopped = lambda: procs_where(lambda pid, comm, f: f[0] == "T" and
                                              int(f[3]) == p.pid)
                self.assertTrue(helpers.wait_until(stopped, 20), "the client was never stopped")
            finally:
                os.kill(run.pid, signal.SIGKILL)
            run.proc.wait(timeout=10)
            out = p.communicate(timeout=30)[0]
        self.assertEqual(p.returncode, 0, out)
        first, _, response = out.partition(b"\n")
        self.assertEqual(int(first.split()[0]), p.pid)
        self.assertEqual(split_http(response)[1], body.encode())
        self.assertTrue(helpers.wait_until(
            lambda: not procs_where(lambda pid, comm, f: pid == guards[0] and f[0] != "Z"), 10),
            "the guard outlived ecapture")
