"""The BPF hot path of `ecapture tls` (issue 14) against a C program the test builds
(hot_path_prog.c: TLS over socketpairs, client and server in one process):

- 8 threads x 2 processes writing distinct 100 KiB patterns for 10 s: every WRITE block carries
  exactly one message of its own thread, every message appears once, nothing is lost;
- a non-blocking SSL_write retried after SSL_ERROR_WANT_WRITE, and one continued after partial
  writes (SSL_MODE_ENABLE_PARTIAL_WRITE), are each captured exactly once;
- threads parked inside SSL_read have entries in tls_active_calls (read with bpftool by the map
  ids of the ecapture process); a cancelled thread and a killed process leave none behind;
- a tls_active_calls made too small on purpose (ECAPTURE_TEST_MAP_ENTRIES) shows its failed
  updates in the exit summary.
"""
import json
import os
import re
import signal
import subprocess
import unittest

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
MSG_SIZE = 100 * 1024


def pattern(pid, t, i, size=MSG_SIZE):
    head = f"P{pid}T{t}M{i}|".encode()
    return head + bytes(ord("a") + (t * 7 + i * 3 + k) % 26 for k in range(len(head), size))


def partial_buffer(size):
    buf = bytearray(ord("A") + (k * 31 + k // 26) % 26 for k in range(size))
    buf[:20] = b"PARTIAL-WRITE-START|"
    return bytes(buf)


def maps_of(pid, name_prefix):
    """Ids of the BPF maps process `pid` holds (its fds' fdinfo) whose name starts with
    name_prefix."""
    ids = set()
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                m = re.search(r"^map_id:\s+(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    found = []
    for map_id in sorted(ids):
        res = subprocess.run(["bpftool", "-j", "map", "show", "id", str(map_id)],
                             capture_output=True, timeout=30)
        if res.returncode == 0 and json.loads(res.stdout).get("name", "").startswith(name_prefix):
            found.append(map_id)
    return found


def entries(map_id):
    res = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)],
                         capture_output=True, timeout=30)
    if res.returncode != 0:
        raise AssertionError(f"bpftool map dump: {res.stderr.decode(errors='replace')}")
    return len(json.loads(res.stdout or b"[]"))


class HotPath(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.build_dir = helpers.tempfile.mkdtemp(prefix="ecap-hotpath-")
        cls.prog = os.path.join(cls.build_dir, "hot_path_prog")
        res = subprocess.run(["cc", "-O2", "-pthread", os.path.join(HERE, "hot_path_prog.c"),
                              "-o", cls.prog, "-lssl", "-lcrypto"], capture_output=True,
                             timeout=120)
        cls.build_error = None if res.returncode == 0 else res.stderr.decode(errors="replace")
        cls.cert, cls.key = helpers.make_cert(cls.build_dir)

    @classmethod
    def tearDownClass(cls):
        helpers.shutil.rmtree(cls.build_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        if self.build_error:
            self.skipTest(f"cannot build hot_path_prog.c (libssl-dev missing?): "
                          f"{self.build_error[:300]}")

    def run_prog(self, *args, timeout=120):
        res = subprocess.run([self.prog, args[0], self.cert, self.key] + [str(a) for a in args[1:]],
                             capture_output=True, timeout=timeout)
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        return [json.loads(line) for line in res.stdout.decode().splitlines()]

    def test_threads_carry_only_their_own_bytes(self):
        with self.run_ecapture(["tls"]) as run:
            procs = [self.procs.popen([self.prog, "threads", self.cert, self.key, "8", "10",
                                       "500", str(MSG_SIZE)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for _ in range(2)]
            reports = []
            for p in procs:
                out, err = p.communicate(timeout=120)
                self.assertEqual(p.returncode, 0, err.decode(errors="replace"))
                reports += [json.loads(line) for line in out.decode().splitlines()]
            run.settle(quiet=1.0, timeout=30)
        self.assertEqual(len(reports), 16, reports)
        summary = run.summary()
        self.assertIsNotNone(summary, run.describe())
        self.assertEqual(summary[2], 0, f"records lost: {run.describe()}")
        blocks = run.blocks()
        tid_of = {(r["pid"], r["tid"]): r["t"] for r in reports}
        seen = {}
        for b in helpers.select(blocks, direction="WRITE"):
            if (b.pid, b.tid) not in tid_of:
                continue
            t = tid_of[(b.pid, b.tid)]
            m = re.match(rb"P(\d+)T(\d+)M(\d+)\|", b.payload)
            self.assertIsNotNone(m, f"block without a message head: {b.header()}")
            pid, bt, i = (int(x) for x in m.groups())
            self.assertEqual((pid, bt), (b.pid, t), f"thread {b.tid} carried another's bytes")
            self.assertEqual(b.length, MSG_SIZE, b.header())
            self.assertEqual(b.payload, pattern(pid, t, i), f"bytes differ in {b.header()}")
            key = (pid, t, i)
            self.assertNotIn(key, seen, f"message {key} captured twice")
            seen[key] = True
        for r in reports:
            want = {(r["pid"], r["t"], i) for i in range(r["count"])}
            got = {k for k in seen if k[:2] == (r["pid"], r["t"])}
            self.assertEqual(got, want, f"thread {r}: missing {sorted(want - got)[:5]}")
        self.assertGreaterEqual(len(seen), 16 * 10)

    def check_partial(self, partial):
        with self.run_ecapture(["tls"]) as run:
            [report] = self.run_prog("partial", 1 << 20, partial)
            run.settle(quiet=1.0, timeout=20)
        self.assertGreater(report["retries"], 0, "the write never had to be retried")
        if partial:
            self.assertGreater(report["calls"] - report["retries"], 1, "no partial write")
        blocks = run.blocks()
        writes = [b for b in helpers.select(blocks, direction="WRITE") if b.tid == report["tid"]]
        data = b"".join(b.payload for b in writes)
        want = partial_buffer(1 << 20)
        self.assertEqual(len(data), len(want), helpers.summarize(writes))
        self.assertEqual(data, want)
        self.assertEqual(data.count(b"PARTIAL-WRITE-START|"), 1)

    def test_retried_write_captured_once(self):
        self.check_partial(0)

    def test_partial_writes_captured_once(self):
        self.check_partial(1)

    def start_blocker(self, threads):
        p = self.procs.popen([self.prog, "block", self.cert, self.key, str(threads)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        lines = helpers.LineReader(p.stdout, "hot_path_prog")
        ready = lines.get_json()
        self.assertEqual(ready["event"], "ready")
        return p, lines

    def test_no_entry_left_by_dead_threads(self):
        p, lines = self.start_blocker(4)
        with self.run_ecapture(["tls", "--pid", str(p.pid)]) as run:
            [calls] = maps_of(run.pid, "tls_active_call")
            self.assertEqual(entries(calls), 0)
            p.stdin.write(b"go\n")
            p.stdin.flush()
            self.assertEqual(lines.get_json()["event"], "blocked")
            self.assertTrue(helpers.wait_until(lambda: entries(calls) == 4, 5),
                            f"{entries(calls)} entries for 4 threads inside SSL_read")
            p.stdin.write(b"cancel\n")
            p.stdin.flush()
            self.assertEqual(lines.get_json()["event"], "cancelled")
            self.assertTrue(helpers.wait_until(lambda: entries(calls) == 3, 5),
                            f"{entries(calls)} entries after one thread was cancelled")
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            self.assertTrue(helpers.wait_until(lambda: entries(calls) == 0, 5),
                            f"{entries(calls)} entries after the process was killed")

    def test_failed_map_updates_in_summary(self):
        p, lines = self.start_blocker(4)
        with self.run_ecapture(["tls", "--pid", str(p.pid)],
                               env={"ECAPTURE_TEST_MAP_ENTRIES": "tls_active_calls:2"}) as run:
            [calls] = maps_of(run.pid, "tls_active_call")
            p.stdin.write(b"go\n")
            p.stdin.flush()
            self.assertEqual(lines.get_json()["event"], "blocked")
            self.assertTrue(helpers.wait_until(lambda: entries(calls) == 2, 5))
        m = re.search(r"summary: events=\d+ bytes=\d+ lost=\d+ decode_errors=\d+ "
                      r"map_update_failures=(\d+)", run.stderr_text())
        self.assertIsNotNone(m, run.describe())
        self.assertEqual(int(m.group(1)), 2, run.describe())


if __name__ == "__main__":
    unittest.main()
