"""Containers and cgroups: `--cgroup_path DIR` captures only processes in DIR's cgroup subtree (in
the kernel), and every event names the process's cgroup (and the container a cgroup path names).
The test builds its own cgroup tree under /sys/fs/cgroup and moves its clients into it; processes
outside it, using the same library at the same time, must not appear. Bad paths give one line."""
import json
import os
import subprocess
import time

import helpers
import test_bad_input
import test_shells
import test_tls_pcap

def cgroup2_mount():
    """Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2" and left.split()[3] == "/":
                return left.split()[4]
    return "/sys/fs/cgroup"


CGROUP_ROOT = cgroup2_mount()
CONTAINER_ID = "c0ffee" + "0123456789abcdef" * 3 + "0a1b2c4d5e"  # 64 hex digits


class CgroupTree:
    """Cgroup directories under <cgroup2 mount>/ecap-test-<pid>-<token>/, removed (deepest
    first) by cleanup() once their processes are gone; a process still in one is killed by pid."""

    def __init__(self, testcase):
        self.top = os.path.join(CGROUP_ROOT, f"ecap-test-{os.getpid()}-{helpers.rand_token(6)}")
        self.dirs = []
        testcase.addCleanup(self.cleanup)
        self.make("")

    def make(self, rel):
        path = os.path.join(self.top, rel) if rel else self.top
        os.mkdir(path)
        self.dirs.append(path)
        return path

    @staticmethod
    def cgroup_of(path):
        """The cgroup path as the kernel shows it in /proc/<pid>/cgroup."""
        return path[len(CGROUP_ROOT):]

    def cleanup(self):
        errors = []
        for path in reversed(self.dirs):
            def removed():
                try:
                    os.rmdir(path)
                    return True
                except FileNotFoundError:
                    return True
                except OSError:  # EBUSY: a process is still inside
                    with open(os.path.join(path, "cgroup.procs")) as f:
                        for pid in f.read().split():
                            try:
                                os.kill(int(pid), 9)
                            except ProcessLookupError:
                                pass
                    return False
            if not helpers.wait_until(removed, 10):
                errors.append(path)
        self.dirs.clear()
        if errors:
            raise RuntimeError(f"cgroups not removed: {errors}")


def in_cgroup(cgroup_dir, argv):
    """argv run by a shell that first moves itself into cgroup_dir (the exec keeps its pid)."""
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    return ["/bin/sh", "-c", f"echo $$ > '{cgroup_dir}/cgroup.procs' && exec {quoted}"]


def inode(path):
    return os.stat(path).st_ino


class CgroupTls(helpers.E2ETestCase):
    def setUp(self):
        super().setUp()
        self.cert, self.key = helpers.make_cert(self.tmp)
        self.nginx = helpers.Nginx(self.tmp, self.cert, self.key).start(self.procs)
        self.port = self.nginx.port

    def start_curl(self, path, argv_wrap=None):
        """A curl fetching `path`; returns (Popen, output file)."""
        out = os.path.join(self.tmp, "curl.out." + helpers.rand_token(6))
        argv = ["curl", "-sS", "--http1.1", "--cacert", self.cert, "-o", out, "-w",
                "%{local_port}", f"https://127.0.0.1:{self.port}{path}"]
        if argv_wrap:
            argv = argv_wrap(argv)
        return self.procs.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE), out

    def finish_curl(self, p, out, body):
        o, e = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, e.decode(errors="replace"))
        with open(out, "rb") as f:
            self.assertEqual(f.read(), body)
        return int(o.decode())

    def json_events(self, run):
        return [json.loads(line) for line in run.stdout_bytes().splitlines() if line.strip()]

    def test_01_only_the_subtree(self):
        """Clients in DIR and in a child of DIR are captured; one in a sibling cgroup and one in
        the test's own cgroup (and nginx, all with the same libssl) are not."""
        tree = CgroupTree(self)
        inside = tree.make("in")
        deep = tree.make(f"in/docker-{CONTAINER_ID}.scope")
        sibling = tree.make("out")
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(3000)
        self.nginx.write_file(name, body)
        path = "/" + name
        with self.run_ecapture(["tls", "--format", "json", "--cgroup_path", inside]) as run:
            clients = {
                "in": self.start_curl(path, lambda a: in_cgroup(inside, a)),
                "deep": self.start_curl(path, lambda a: in_cgroup(deep, a)),
                "sibling": self.start_curl(path, lambda a: in_cgroup(sibling, a)),
                "here": self.start_curl(path),
            }
            lports = {k: self.finish_curl(p, out, body) for k, (p, out) in clients.items()}
            pids = {k: p.pid for k, (p, _) in clients.items()}
            want = {pids["in"], pids["deep"]}

            def both_answered():
                evs = self.json_events(run)
                return {e["pid"] for e in evs if e["direction"] == "READ"} >= want
            helpers.wait_until(both_answered, 15)
            run.settle(quiet=0.5, timeout=5)
        events = self.json_events(run)
        dump = json.dumps(events)[:4000] + "\n" + run.describe()
        # Exactly one request and one response per captured client, nothing from anyone else.
        self.assertEqual(sorted((e["pid"], e["direction"]) for e in events),
                         sorted((p, d) for p in want for d in ("READ", "WRITE")), dump)
        expect = {
            pids["in"]: (tree.cgroup_of(inside), inode(inside), "", "", lports["in"]),
            pids["deep"]: (tree.cgroup_of(deep), inode(deep), CONTAINER_ID, "docker",
                           lports["deep"]),
        }
        for e in events:
            cgroup, cid, container, runtime, lport = expect[e["pid"]]
            self.assertEqual((e["cgroup"], e["cgroup_id"], e["container_id"],
                              e["container_runtime"], e["comm"], e["proto"]),
                             (cgroup, cid, container, runtime, "curl", "HTTP/1.1"), dump)
            local = e["src_port"] if e["direction"] == "WRITE" else e["dst_port"]
            self.assertEqual(local, lport, dump)
            if e["direction"] == "WRITE":
                self.assertTrue(e["payload"].startswith(f"GET {path} HTTP/1.1\r\n"), dump)
            else:
                self.assertTrue(e["payload"].endswith(body.decode()), dump)

    def test_02_text_shows_container(self):
        """Text output names the container (12 characters of its id) of a process in a docker
        scope, and nothing for a process in a cgroup that names no container."""
        tree = CgroupTree(self)
        scope = tree.make(f"docker-{CONTAINER_ID}.scope")
        plain = tree.make("plain")
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(200)
        self.nginx.write_file(name, body)
        with self.run_ecapture(["tls", "--cgroup_path", tree.top]) as run:
            c1 = self.start_curl("/" + name, lambda a: in_cgroup(scope, a))
            c2 = self.start_curl("/" + name, lambda a: in_cgroup(plain, a))
            self.finish_curl(*c1, body)
            self.finish_curl(*c2, body)
            want = {c1[0].pid, c2[0].pid}
            helpers.wait_until(lambda: {b.pid for b in run.blocks() if b.direction == "READ"}
                               >= want, 15)
            run.settle(quiet=0.5, timeout=5)
        blocks = run.blocks()
        text = run.stdout_bytes().decode(errors="replace")
        self.assertEqual(sorted((b.pid, b.direction) for b in blocks),
                         sorted((p, d) for p in want for d in ("READ", "WRITE")), text[:4000])
        for b in blocks:
            self.assertEqual(b.container, CONTAINER_ID[:12] if b.pid == c1[0].pid else None,
                             b.header())


    def test_03_pcap_mode(self):
        """-m pcap sees every process's keys (to know each connection's owner) and applies
        --cgroup_path in user space: the pcapng holds only the connection of the client in the
        cgroup, and the key log only its session's secrets."""
        tree = CgroupTree(self)
        inside = tree.make("in")
        name = helpers.rand_token(16) + ".txt"
        body = helpers.rand_printable(500)
        self.nginx.write_file(name, body)
        pcap = os.path.join(self.tmp, "out.pcapng")
        keys = os.path.join(self.tmp, "keys.log")
        args = ["tls", "-m", "pcap", "-i", "lo", "-w", pcap, "-k", keys, "--cgroup_path", inside,
                "tcp", "port", str(self.port)]
        with self.run_ecapture(args) as run:
            c_in = self.start_curl("/" + name, lambda a: in_cgroup(inside, a))
            c_out = self.start_curl("/" + name)
            lport_in = self.finish_curl(*c_in, body)
            lport_out = self.finish_curl(*c_out, body)
            helpers.wait_until(lambda: test_tls_pcap.pcap_has_response_and_fin(pcap, lport_in),
                               10, 0.2)
        fields = test_tls_pcap.tshark_fields
        pkts = fields(pcap, ["tcp.srcport", "tcp.dstport"])
        ports = {int(p[0]) for p in pkts} | {int(p[1]) for p in pkts}
        self.assertEqual(ports, {lport_in, self.port},
                         f"port {lport_out} is outside the cgroup\n{run.describe()}")
        reqs = fields(pcap, ["http.request.uri", "frame.comment"], "http.request")
        self.assertEqual(reqs, [["/" + name, f"pid={c_in[0].pid} comm=curl"]], run.describe())
        hello = fields(pcap, ["tls.handshake.random"], "tls.handshake.type == 1")
        self.assertEqual(len(hello), 1, hello)
        with open(keys) as f:
            randoms = {line.split()[1] for line in f if line.strip()}
        self.assertEqual(randoms, {hello[0][0].replace(":", "")}, run.describe())


class CgroupShell(helpers.E2ETestCase):
    def test_bash_only_the_cgroup(self):
        """Two interactive bash shells at once, one moved into the cgroup: only its commands are
        reported, with its pid and cgroup."""
        tree = CgroupTree(self)
        tok = helpers.rand_token()
        argv = test_shells.BashTest.argv
        with self.run_ecapture(["bash", "--bash", test_shells.BASH, "--cgroup_path",
                                tree.top]) as run:
            inside = test_shells.PtyShell(self, in_cgroup(tree.top, argv))
            outside = test_shells.PtyShell(self, argv)
            for i in range(3):
                inside.send(f"echo in_{tok}_{i}".encode())
                outside.send(f"echo out_{tok}_{i}".encode())
            inside.send(b"exit", expect=None)
            outside.send(b"exit", expect=None)
            inside.wait_exit()
            outside.wait_exit()
            helpers.wait_until(lambda: len(helpers.parse_audit(run.stdout_bytes())) >= 4, 15)
            run.settle(quiet=0.7, timeout=5)
        cmds = helpers.parse_audit(run.stdout_bytes())
        got = [(c.pid, c.text.decode(), c.attrs.get("end")) for c in cmds]
        expect = [(inside.pid, f"echo in_{tok}_{i}", "prompt") for i in range(3)]
        expect.append((inside.pid, "exit", "exit"))
        self.assertEqual(got, expect, test_shells.describe(cmds) + "\n" + run.describe())
        # The same capture as JSON carries the cgroup path.
        with self.run_ecapture(["bash", "--bash", test_shells.BASH, "--format", "json",
                                "--cgroup_path", tree.top]) as run:
            sh = test_shells.PtyShell(self, in_cgroup(tree.top, argv))
            sh.send(f"echo json_{tok}".encode())
            sh.send(b"exit", expect=None)
            sh.wait_exit()
            helpers.wait_until(lambda: run.stdout_bytes().count(b"\n") >= 2, 15)
            run.settle(quiet=0.7, timeout=5)
        recs = [json.loads(line) for line in run.stdout_bytes().splitlines() if line.strip()]
        self.assertEqual([(r["pid"], r["payload"], r["cgroup"], r["cgroup_id"], r["container_id"])
                          for r in recs],
                         [(sh.pid, f"echo json_{tok}", tree.cgroup_of(tree.top),
                           inode(tree.top), ""),
                          (sh.pid, "exit", tree.cgroup_of(tree.top), inode(tree.top), "")],
                         run.describe())


class CgroupBadInput(helpers.E2ETestCase):
    run_bad = test_bad_input.BadInput.run_bad
    assert_one_error = test_bad_input.BadInput.assert_one_error

    def test_missing_dir(self):
        missing = os.path.join(CGROUP_ROOT, f"ecap-missing-{helpers.rand_token(8)}")
        line = self.assert_one_error(["tls", "--cgroup_path", missing], missing)
        self.assertEqual(line, f"ecapture: --cgroup_path {missing}: no such directory (give a "
                               f"cgroup v2 directory: one under {CGROUP_ROOT})")

    def test_plain_dir(self):
        for module in ("tls", "bash", "gotls"):
            line = self.assert_one_error([module, "--cgroup_path", self.tmp], self.tmp)
            self.assertEqual(line, f"ecapture: --cgroup_path {self.tmp}: not a cgroup v2 "
                                   f"directory (it is not on a cgroup2 file system; give one "
                                   f"under {CGROUP_ROOT})")

    def test_a_file(self):
        path = os.path.join(CGROUP_ROOT, "cgroup.procs")
        line = self.assert_one_error(["tls", "--cgroup_path", path], path)
        self.assertIn("not a directory", line)
