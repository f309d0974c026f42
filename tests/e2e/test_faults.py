"""Faults survived (issue 17): a client killed mid-upload, a consumer that stops reading, a full
disk under each output file, ecapture itself killed during pcap capture, the target server
restarted, and 10,000 TLS connections held open at once. Real nginx / Python TLS servers, curl and
Python clients on 127.0.0.1; every assertion is on exact bytes, pids, counts or memory figures.
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import shutil
import time
import unittest

import helpers
from helpers import select

# Reads one upload per connection (Content-Length), discarding the body, and prints how much it
# has read so far; answers "got <n>".
UPLOAD_SERVER = r"""
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print("port", ls.getsockname()[1], flush=True)
lock = threading.Lock()
def serve(c, n):
    try:
        s = ctx.wrap_socket(c, server_side=True)
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        got, mark = len(body), 0
        while got < length:
            d = s.recv(1 << 20)
            if not d:
                break
            got += len(d)
            if got - mark >= 1 << 20:
                mark = got
                with lock:
                    print("progress", n, got, flush=True)
        with lock:
            print("done", n, got, flush=True)
        if got == length:
            reply = b"got %d" % got
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                      % (len(reply), reply))
        s.close()
    except (OSError, ssl.SSLError) as e:
        with lock:
            print("error", n, e, flush=True)
n = 0
while True:
    c, _ = ls.accept()
    n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
"""

# Accepts one connection from ecapture's --eventaddr tcp:// writer and appends what it reads to a
# file (SIGSTOP stops it reading).
TCP_CONSUMER = r"""
import socket, sys
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print(ls.getsockname()[1], flush=True)
c, _ = ls.accept()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
print("connected", flush=True)
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        out.write(d)
"""

# Opens N TLS connections to 127.0.0.1:PORT, sends one request on each and reads its answer
# (so that ecapture holds state for every one), reports, waits for a line on stdin, closes all.
MANY_CLIENTS = r"""
import asyncio, resource, ssl, sys
port, cafile, count, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 1000, count + 1000))
ctx = ssl.create_default_context(cafile=cafile)
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
async def one(sem):
    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                             server_hostname="localhost")
        w.write(req)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK"), head
        n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                .split(b":")[1])
        await r.readexactly(n)
        return w
async def main():
    sem = asyncio.Semaphore(64)
    writers = await asyncio.gather(*(one(sem) for _ in range(count)))
    print("open", len(writers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for w in writers:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    print("closed", len(writers), flush=True)
asyncio.run(main())
"""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


class Faults(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-faults-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key,
                                  worker_connections=12000,
                                  keepalive="900s").start(cls.cls_procs)
        cls.port = cls.nginx.port

    # -- helpers --------------------------------------------------------------------------------

    def new_file(self, size):
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(size)
        self.nginx.write_file(name, body)
        return "/" + name, body

    def curl(self, url, *extra):
        """Runs curl to completion; returns (pid, local port, exact request head, body)."""
        out = os.path.join(self.tmp, "curl." + helpers.rand_token(6))
        p = self.procs.popen(["curl", "-sS", "-v", "--cacert", self.cert, "-o", out, "-w",
                              "%{local_port}", *extra, url],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o, e = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, e.decode(errors="replace")[-2000:])
        with open(out, "rb") as f:
            body = f.read()
        os.unlink(out)
        return p.pid, int(o.decode()), helpers.curl_request_headers(e), body

    def get(self, size=300, port=None):
        """A GET of a new file from nginx; returns (curl pid, local port, request head, body)."""
        path, body = self.new_file(size)
        pid, lport, head, got = self.curl(f"https://127.0.0.1:{port or self.port}{path}")
        self.assertEqual(got, body)
        return pid, lport, head, body

    def wait_blocks(self, run, pred, what, timeout=20):
        """Waits until pred(blocks of the output so far) holds; returns those blocks."""
        def check():
            blocks = helpers.parse_output(run.stdout_bytes(), partial=True)
            return blocks if pred(blocks) else None
        blocks = helpers.wait_until(check, timeout, 0.1)
        if not blocks:
            blocks = helpers.parse_output(run.stdout_bytes(), partial=True)
            self.fail(f"{what}: not within {timeout} s\n{helpers.summarize(blocks)}\n"
                      f"{run.describe()}")
        return blocks

    def assert_get_captured(self, run, pid, head, body, server_pids, what):
        """curl `pid`'s request head and its response body are in the output, byte for byte,
        and the server side (one of `server_pids`) read the same head."""
        def done(blocks):
            sent = helpers.stream(blocks, pid, "WRITE")
            recv = helpers.stream(blocks, pid, "READ")
            server = [b for b in blocks if b.pid in server_pids and b.direction == "READ"
                      and b.payload == head]
            return sent == head and recv.endswith(body) and server
        blocks = self.wait_blocks(run, done, what)
        return [b.pid for b in blocks if b.pid in server_pids and b.payload == head]

    def mount_tmpfs(self, size_kib, free_kib):
        """A tmpfs of size_kib with only about free_kib left; unmounted at cleanup."""
        d = os.path.join(self.tmp, "full-" + helpers.rand_token(4))
        os.makedirs(d)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", d],
                       check=True, capture_output=True, timeout=30)
        self.addCleanup(subprocess.run, ["umount", "-l", d], capture_output=True, timeout=30)
        with open(os.path.join(d, "filler"), "wb") as f:
            f.write(b"\0" * ((size_kib - free_kib) * 1024))
        st = os.statvfs(d)
        self.assertLessEqual(st.f_bavail * st.f_frsize, (free_kib + 4) * 1024)
        return d

    def worker(self):
        workers = self.nginx.worker_pids()
        self.assertEqual(len(workers), 1, workers)
        return str(workers[0])

    def error_lines(self, run, path):
        """stderr lines that report a write error on `path`."""
        return [line for line in run.stderr_text().splitlines()
                if path in line and "No space left on device" in line]

    # -- a client killed in the middle of a 100 MiB upload ----------------------------------------

    def test_01_client_sigkilled_mid_upload(self):
        server = self.procs.popen([helpers.DEBIAN_PYTHON, "-c", UPLOAD_SERVER, self.cert,
                                   self.key], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = helpers.LineReader(server.stdout, "upload server")
        port = int(lines.get().split()[1])
        big = os.path.join(self.tmp, "big")
        chunk = helpers.rand_printable(1 << 20)
        with open(big, "wb") as f:
            for _ in range(100):
                f.write(chunk)
        url = f"https://127.0.0.1:{port}/upload"
        # A 64 MiB ring and a rate-limited upload: what is measured is the kill, not whether the
        # reader keeps up with a loopback burst on two busy cores (losses have their own tests).
        with self.run_ecapture(["tls", "--mapsize", "16384"]) as run:
            rss0 = rss_kib(run.pid)
            killed = self.procs.popen(["curl", "-sS", "--cacert", self.cert, "-H", "Expect:",
                                       "--limit-rate", "10M", "--data-binary", "@" + big, url],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            got = 0
            while got < 12 << 20:
                parts = lines.get(timeout=60).split()
                if parts[0] == b"progress":
                    got = int(parts[2])
            killed.kill()
            killed.wait(timeout=10)
            while (done := lines.get(timeout=30).split())[0] == b"progress":
                got = int(done[2])
            self.assertIn(done[0], (b"done", b"error"), done)
            # The cut connection's data reached the output, and nothing of it waits for more.
            blocks = self.wait_blocks(
                run, lambda bl: len(helpers.stream(bl, killed.pid, "WRITE")) >= got,
                "the killed upload's bytes", timeout=30)
            rss_after_kill = rss_kib(run.pid)
            # Capture continues: a new upload is captured whole, on both sides.
            token = helpers.rand_printable(64)
            pid, _, head, body = self.curl(url, "-H", "Expect:", "--data-binary", token)
            self.assertEqual(body, b"got 64")
            request = head + token
            blocks = self.wait_blocks(
                run, lambda bl: helpers.stream(bl, pid, "WRITE") == request and
                any(b.pid == server.pid and b.direction == "READ" and token in b.payload
                    for b in bl), "the upload after the kill", timeout=20)
        sent = helpers.stream(blocks, killed.pid, "WRITE")
        with open(big, "rb") as f:
            whole = f.read()
        head_end = sent.find(b"\r\n\r\n") + 4
        self.assertTrue(sent.startswith(b"POST /upload HTTP/1.1\r\n"), sent[:200])
        self.assertEqual(sent[head_end:], whole[:len(sent) - head_end],
                         "the killed upload's captured body is a prefix of the file")
        self.assertLess(len(sent) - head_end, len(whole), "curl was killed before the end")
        # The 100 MiB never sat in memory: well under the size of the upload.
        self.assertLess(rss_after_kill - rss0, 48 * 1024,
                        f"RSS grew {rss_after_kill - rss0} KiB during the upload")
        # No line logged at error level (the summary's decode_errors= counter does not count).
        self.assertIsNone(re.search(r"^\S+ \S+ (error|critical) ", run.stderr_text(), re.M),
                          run.stderr_text()[-3000:])

    # -- a tcp consumer that stops reading --------------------------------------------------------

    def test_02_sigstopped_tcp_consumer(self):
        received = os.path.join(self.tmp, "consumer.out")
        consumer = self.procs.popen([helpers.DEBIAN_PYTHON, "-c", TCP_CONSUMER, received],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # A stopped consumer must be resumed before it is killed, or cleanup would wait on it.
        self.addCleanup(os.kill, consumer.pid, signal.SIGCONT)
        cl = helpers.LineReader(consumer.stdout, "tcp consumer")
        cport = int(cl.get())
        events = os.path.join(self.tmp, "events.txt")
        path, body = self.new_file(2 << 20)
        with self.run_ecapture(["tls", "--mapsize", "16384", "--eventaddr", events,
                                "--eventaddr", f"tcp://127.0.0.1:{cport}"]) as run:
            self.assertEqual(cl.get(), b"connected\n")
            pid, _, head, _ = self.get()
            self.assertTrue(helpers.wait_until(
                lambda: head in open(received, "rb").read(), 20), "first request not delivered")
            # The same traffic first with the consumer reading: what the traffic itself costs.
            # At most DOWNLOADS per phase: 48 MiB, three times the tcp queue, yet an amount any
            # machine writes to a file in seconds even with its cores busy (an unbounded loop
            # would measure how fast this host encodes text, not the stalled consumer).
            downloads = 24
            rss_start = rss_kib(run.pid)
            base_peak, t0, n = rss_start, time.monotonic(), 0
            while time.monotonic() - t0 < 10 and n < downloads:
                self.curl(f"https://127.0.0.1:{self.port}{path}")
                base_peak = max(base_peak, rss_kib(run.pid))
                n += 1
            os.kill(consumer.pid, signal.SIGSTOP)
            rss0 = rss_kib(run.pid)
            peak, t0, pids = rss0, time.monotonic(), []
            while time.monotonic() - t0 < 10:  # the consumer stays stopped for 10 s
                if len(pids) < downloads:
                    pids.append(self.curl(f"https://127.0.0.1:{self.port}{path}")[0])
                else:
                    time.sleep(0.1)
                peak = max(peak, rss_kib(run.pid))
            paused_for = time.monotonic() - t0
            # Full speed meanwhile: the file output has every download's body.
            def all_in_file():
                blocks = helpers.parse_output(open(events, "rb").read(), partial=True)
                return all(helpers.stream(blocks, p, "READ").endswith(body) for p in pids)
            self.assertTrue(helpers.wait_until(all_in_file, 30), "file output fell behind")
            peak = max(peak, rss_kib(run.pid))
            os.kill(consumer.pid, signal.SIGCONT)
            pid2, _, head2, _ = self.get()
            self.assertTrue(helpers.wait_until(
                lambda: head2 in open(received, "rb").read(), 30),
                "delivery did not resume after SIGCONT")
        self.assertGreaterEqual(len(pids), 3, "too few downloads during the pause")
        err = run.stderr_text()
        m = re.search(rf"text tcp://127\.0\.0\.1:{cport}: messages=(\d+) bytes=(\d+) "
                      rf"dropped=(\d+)", err)
        self.assertIsNotNone(m, err[-3000:])
        self.assertGreater(int(m.group(3)), 0, "the stopped consumer must have cost drops")
        # 2 MiB bodies, 64 MiB of ring (mapped, not counted until touched) and a 16 MiB queue.
        # Compared with the same traffic while the consumer read (the peak then), so that what
        # the traffic itself costs on a loaded machine (decoder backlog) is not charged to it.
        grown = peak - max(rss0, base_peak)
        print(f"[faults] RSS {rss_start} KiB at start, peak {base_peak} KiB with the consumer "
              f"reading; consumer stopped {paused_for:.1f}s, {len(pids)} downloads of "
              f"{len(body)} B, RSS {rss0} -> peak {peak} KiB, dropped {m.group(3)}")
        # The writer queue (16 MiB) plus a few 2 MiB messages in flight.
        self.assertLess(grown, 48 * 1024, f"RSS grew {grown} KiB while the consumer was stopped")

    # -- the disk under an output fills up ---------------------------------------------------------

    def test_03a_disk_full_pcapng(self):
        full = self.mount_tmpfs(512, 64)
        pcap = os.path.join(full, "cap.pcapng")
        keylog = os.path.join(self.tmp, "keys.log")
        # --pid of nginx's worker: the key log gets our connections only, not other tests'.
        with self.run_ecapture(["tls", "--pid", self.worker(), "-m", "pcap", "-i", "lo", "-w",
                                pcap, "-k", keylog, "tcp", "port", str(self.port)]) as run:
            # Something is written (and flushed) before the disk fills up.
            first = self.get(size=500)[2].split(b" ")[1].decode()
            self.assertTrue(helpers.wait_until(lambda: http_uris(pcap) == [first], 10, 0.2),
                            run.describe())
            for _ in range(4):
                self.get(size=100_000)
            self.assertTrue(helpers.wait_until(lambda: self.error_lines(run, pcap), 10),
                            run.describe())
            # The key log on another disk keeps working: every connection's secrets are there.
            self.assertTrue(helpers.wait_until(
                lambda: count_label(keylog, "CLIENT_TRAFFIC_SECRET_0") == 5, 10),
                open(keylog).read() if os.path.exists(keylog) else "no key log")
            self.get(size=1000)
            self.assertTrue(helpers.wait_until(
                lambda: count_label(keylog, "CLIENT_TRAFFIC_SECRET_0") == 6, 10))
            self.assertIsNone(run.proc.poll(), "ecapture exited")
        self.assertEqual(run.returncode, 0, run.describe())
        errors = self.error_lines(run, pcap)
        self.assertEqual(len(errors), 1, "one clear error\n" + run.stderr_text()[-3000:])
        # What was written is a valid pcapng that tshark reads to its end without complaint,
        # and it still holds the request from before the disk filled up, decrypted.
        r = subprocess.run(["tshark", "-n", "-r", pcap], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        complaints = [line for line in r.stderr.decode().splitlines()
                      if not line.startswith("Running as user")]
        self.assertEqual(complaints, [])
        self.assertEqual(http_uris(pcap)[0], first)

    def test_03b_disk_full_event_file(self):
        from test_outputs import TcpSink
        full = self.mount_tmpfs(256, 48)
        events = os.path.join(full, "events.txt")
        sink = TcpSink(self)
        with self.run_ecapture(["tls", "--eventaddr", events, "--eventaddr",
                                f"tcp://127.0.0.1:{sink.port}"]) as run:
            gets = [self.get(size=300)]
            first_pid, _, first_head, first_body = gets[0]
            self.assertTrue(helpers.wait_until(lambda: first_head in open(events, "rb").read(),
                                               10), run.describe())
            for _ in range(6):
                gets.append(self.get(size=20_000))
            self.assertTrue(helpers.wait_until(lambda: self.error_lines(run, events), 10),
                            run.describe())
            # The network output keeps working: every request reached the consumer.
            self.assertTrue(helpers.wait_until(
                lambda: all(g[2] in bytes(sink.data) for g in gets), 20))
        self.assertEqual(run.returncode, 0, run.describe())
        errors = self.error_lines(run, events)
        self.assertEqual(len(errors), 1, "one clear error\n" + run.stderr_text()[-3000:])
        # What reached the file are whole messages: the strict parser reads it to the end, and
        # the first exchange is there byte for byte.
        blocks = helpers.parse_output(open(events, "rb").read())
        self.assertEqual(helpers.stream(blocks, first_pid, "WRITE"), first_head)
        self.assertTrue(helpers.stream(blocks, first_pid, "READ").endswith(first_body))
        sunk = helpers.parse_output(bytes(sink.data))
        for pid, _, head, body in gets:
            self.assertEqual(helpers.stream(sunk, pid, "WRITE"), head)
            self.assertTrue(helpers.stream(sunk, pid, "READ").endswith(body))
        # Every block in the file is one the consumer also got, byte for byte.
        sunk_set = {(b.pid, b.direction, b.payload) for b in sunk}
        for b in blocks:
            self.assertIn((b.pid, b.direction, b.payload), sunk_set)

    def test_03c_disk_full_key_log(self):
        full = self.mount_tmpfs(64, 4)
        keylog = os.path.join(full, "keys.log")
        pcap = os.path.join(self.tmp, "cap.pcapng")
        n = 40  # ~ 4 lines of ~180 bytes per TLS 1.3 connection: 28 KiB, more than 4 KiB free
        with self.run_ecapture(["tls", "--pid", self.worker(), "-m", "pcap", "-i", "lo", "-w",
                                pcap, "-k", keylog, "tcp", "port", str(self.port)]) as run:
            for _ in range(n):
                self.get(size=100)
            self.assertTrue(helpers.wait_until(lambda: self.error_lines(run, keylog), 10),
                            run.describe())
        self.assertEqual(run.returncode, 0, run.describe())
        errors = self.error_lines(run, keylog)
        self.assertEqual(len(errors), 1, "one clear error\n" + run.stderr_text()[-3000:])
        # Whole lines only.
        with open(keylog, "rb") as f:
            text = f.read()
        self.assertTrue(text.endswith(b"\n"), text[-200:])
        for line in text.splitlines():
            self.assertRegex(line, rb"^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64,96}$")
        # The pcapng on the other disk has the secrets of all n connections.
        r = subprocess.run(["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap), "-Y",
                            "http.request", "-T", "fields", "-e", "http.request.uri"],
                           capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        self.assertEqual(len(r.stdout.split()), n, r.stdout.decode()[:2000])

    # -- ecapture killed during pcap capture -----------------------------------------------------

    def test_04_ecapture_sigkilled_during_pcap(self):
        pcap = os.path.join(self.tmp, "killed.pcapng")
        before_qdisc = tc_qdiscs("lo")
        with self.run_ecapture(["tls", "-m", "pcap", "-i", "lo", "-w", pcap, "-k",
                                os.path.join(self.tmp, "k.log"), "tcp", "port", str(self.port)],
                               stop_signal=signal.SIGKILL, expect_rc=None) as run:
            owned = helpers.owned_bpf_ids(run.pid)
            pid, lport, head, body = self.get(size=5000)
            path = head.split(b" ")[1].decode()
            # Flushed: the request is readable from the file while ecapture still runs.
            self.assertTrue(helpers.wait_until(
                lambda: os.path.exists(pcap) and http_uris(pcap) == [path], 10),
                run.describe())
        self.assertEqual(run.returncode, -signal.SIGKILL)
        self.assertTrue(owned["prog"] and owned["link"], owned)
        lo = socket.if_nametoindex("lo")
        self.assertEqual(set(owned["tcx"].values()), {lo}, f"no tcx link of ours on lo: {owned}")
        self.assertEqual(http_uris(pcap), [path])
        r = subprocess.run(["tshark", "-n", "-r", pcap], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        # The kernel drops the process's links (the tcx ones too) and programs with it; no qdisc
        # or tc filter was ever added (tcx links need none).
        helpers.assert_bpf_released(self, owned)
        self.assertEqual(tc_qdiscs("lo"), before_qdisc, "qdiscs on lo changed")
        self.assertEqual(tc_filters("lo"), [], "tc filters on lo")

    # -- the target server restarts ----------------------------------------------------------------

    def test_05_server_reload_and_restart(self):
        os.chmod(self.tmp, 0o755)  # nginx's workers run unprivileged
        tmp = os.path.join(self.tmp, "own-nginx")
        os.makedirs(tmp)
        nginx = helpers.Nginx(tmp, self.cert, self.key).start(self.procs)
        port = nginx.port

        def fetch_and_check(what):
            name = helpers.rand_token(16) + ".txt"
            body = helpers.rand_printable(500)
            nginx.write_file(name, body)
            pid, _, head, got = self.curl(f"https://127.0.0.1:{port}/{name}")
            self.assertEqual(got, body)
            workers = set(nginx.worker_pids())
            return set(self.assert_get_captured(run, pid, head, body, workers, what))

        with self.run_ecapture(["tls"]) as run:
            first = fetch_and_check("before the reload")
            old_workers = set(nginx.worker_pids())
            # Reload: the master starts new workers and retires the old ones.
            os.kill(nginx.proc.pid, signal.SIGHUP)
            self.assertTrue(helpers.wait_until(
                lambda: nginx.worker_pids() and not set(nginx.worker_pids()) & old_workers, 20),
                "nginx did not replace its workers")
            second = fetch_and_check("after nginx reload")
            # Full stop and a new nginx (new master, new workers) on the same port.
            helpers.Nginx.stop(nginx.proc)
            self.assertTrue(helpers.wait_until(lambda: not nginx._listening(), 10))
            nginx = helpers.Nginx(os.path.join(tmp, "again"), self.cert, self.key)
            nginx.start(self.procs, port=port)
            third = fetch_and_check("after nginx stop/start")
        self.assertTrue(first and second and third)
        self.assertEqual(first & second, set(), "the reload gave new workers")
        self.assertEqual(second & third, set(), "the restart gave new workers")

    # -- 10,000 TLS connections at once -----------------------------------------------------------

    def test_06_ten_thousand_connections(self):
        count = 10_000
        path, body = self.new_file(64)
        client_py = os.path.join(self.tmp, "many.py")
        with open(client_py, "w") as f:
            f.write(MANY_CLIENTS)
        with self.run_ecapture(["tls", "--pid", self.worker(), "--eventaddr",
                                "/dev/null"]) as run:
            rss0 = rss_kib(run.pid)
            client = self.procs.popen([helpers.DEBIAN_PYTHON, client_py, str(self.port),
                                       self.cert, str(count), path], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            lines = helpers.LineReader(client.stdout, "10k client")
            opened = lines.get(timeout=600)
            self.assertEqual(opened, f"open {count}\n".encode(), client.stderr.read()
                             if client.poll() is not None else "")
            self.assertEqual(len(helpers.tcp_local_ports(client.pid, self.port)), count)
            run.settle(quiet=1.0, timeout=60)
            rss_open = rss_kib(run.pid)
            client.stdin.write(b"close\n")
            client.stdin.flush()
            self.assertEqual(lines.get(timeout=120), f"closed {count}\n".encode())
            self.assertEqual(client.wait(timeout=60), 0)
            # A second wave: if closed connections' state were kept, memory would grow again.
            client2 = self.procs.popen([helpers.DEBIAN_PYTHON, client_py, str(self.port),
                                        self.cert, str(count), path], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            lines2 = helpers.LineReader(client2.stdout, "10k client (2)")
            self.assertEqual(lines2.get(timeout=600), f"open {count}\n".encode())
            run.settle(quiet=1.0, timeout=60)
            rss_second = rss_kib(run.pid)
            client2.stdin.write(b"close\n")
            client2.stdin.flush()
            self.assertEqual(lines2.get(timeout=120), f"closed {count}\n".encode())
        summary = run.summary()
        self.assertIsNotNone(summary, run.describe())
        print(f"[faults] 10k connections: RSS {rss0} KiB idle, {rss_open} KiB with {count} open "
              f"(+{(rss_open - rss0) / count * 1024:.0f} B each), {rss_second} KiB after a second "
              f"wave; events={summary[0]} lost={summary[2]}")
        self.assertEqual(summary[2], 0, "records lost")
        # nginx's side of two waves: one request read and one response written per connection.
        self.assertEqual(summary[0], 2 * 2 * count)
        # Measured here: +15 MiB (about 1.5 KiB per connection), +1 MiB for the second wave.
        self.assertLess(rss_open - rss0, 64 * 1024, "10k connections must cost < 64 MiB")
        self.assertLess(rss_second - rss_open, 8 * 1024, "the second wave must reuse the memory")


def count_label(keylog, label):
    if not os.path.exists(keylog):
        return 0
    with open(keylog) as f:
        return sum(1 for line in f if line.startswith(label + " "))


def http_uris(pcap):
    r = subprocess.run(["tshark", "-n", "-r", pcap, *helpers.tls_decode_as(pcap), "-Y",
                        "http.request", "-T", "fields", "-e", "http.request.uri"],
                       capture_output=True, timeout=60)
    return r.stdout.decode(errors="replace").split()


def tc_qdiscs(dev):
    r = subprocess.run(["tc", "qdisc", "show", "dev", dev], capture_output=True, timeout=30)
    return sorted(r.stdout.decode().splitlines())


def tc_filters(dev):
    out = []
    for hook in ("ingress", "egress"):
        r = subprocess.run(["tc", "filter", "show", "dev", dev, hook], capture_output=True,
                           timeout=30)
        out += r.stdout.decode().splitlines()
    return out


if __name__ == "__main__":
    unittest.main()
