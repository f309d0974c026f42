"""Fleet operation (issue 16): --eventaddr kafka:// into librdkafka's mock cluster (3 brokers on
127.0.0.1, started by tests/e2e/kafka_mock.c, which the test builds) while curl talks to nginx:
every message consumed, in order per connection, with the exact request line, host, pid and
module, in JSON and protobuf; brokers down for 5 s and back; a small queue bound with exact drop
counts; GET /metrics through promtool and against the exit summary; bad kafka:// input; the
systemd unit and the DaemonSet manifest in deploy/.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_ID = "fleet-node-" + helpers.rand_token(6)


class KafkaMock:
    """The kafka_mock program: a 3-broker mock cluster, one topic, a consumer writing to a file."""

    def __init__(self, testcase, binary, tmp, partitions=4):
        self.topic = "ecap-" + helpers.rand_token(8)
        self.out = os.path.join(tmp, f"{self.topic}.consumed")
        self.proc = testcase.procs.popen([binary, self.topic, str(partitions), self.out],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        self.lines = helpers.LineReader(self.proc.stdout, "kafka_mock")
        first = self.lines.get(20).decode().strip()
        if not first.startswith("bootstrap "):
            raise AssertionError(f"kafka_mock did not start: {first!r}")
        self.bootstrap = first.split(" ", 1)[1]
        self.address = f"kafka://{self.bootstrap}/{self.topic}"
        self.ports = [int(b.rsplit(":", 1)[1]) for b in self.bootstrap.split(",")]
        testcase.addCleanup(self.quit)

    def command(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        reply = self.lines.get(10).decode().strip()
        if reply != f"ok {cmd}":
            raise AssertionError(f"kafka_mock {cmd}: {reply!r}")

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass

    def messages(self):
        """[(partition, offset, key bytes, value bytes, {header: str})] in consumed order."""
        out = []
        if not os.path.exists(self.out):
            return out
        with open(self.out) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written
                part, off, key, value, hdrs = line.split()
                unhex = (lambda s: b"" if s == "-" else bytes.fromhex(s))
                headers = {}
                if hdrs != "-":
                    for h in hdrs.split(","):
                        k, _, v = h.partition("=")
                        headers[k] = unhex(v).decode()
                out.append((int(part), int(off), unhex(key), unhex(value), headers))
        return out

    def wait_count(self, n, timeout=30):
        helpers.wait_until(lambda: len(self.messages()) >= n, timeout)
        return self.messages()


SINK_RE = r"{fmt} {addr}: messages=(\d+) bytes=(\d+) dropped=(\d+) queue_full=(\d+) " \
          r"delivery_failed=(\d+)"


def kafka_summary(run, fmt, address):
    """(messages, bytes, dropped, queue_full, delivery_failed) of the Kafka sink's exit line."""
    m = re.search(SINK_RE.format(fmt=fmt, addr=re.escape(address)), run.stderr_text())
    if not m:
        raise AssertionError(f"no summary for {address}:\n{run.describe()}")
    return tuple(int(x) for x in m.groups())


def processor_messages(run):
    m = re.search(r"output summary: messages=(\d+) ", run.stderr_text())
    if not m:
        raise AssertionError(f"no output summary:\n{run.describe()}")
    return int(m.group(1))


class Fleet(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-fleet-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.mock_bin = os.path.join(cls.cls_tmp, "kafka_mock")
        r = subprocess.run(["cc", "-O1", "-Wall", "-o", cls.mock_bin,
                            os.path.join(ROOT, "tests/e2e/kafka_mock.c"), "-lrdkafka",
                            "-lpthread"], capture_output=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"cannot build kafka_mock (librdkafka-dev, scripts/setup.sh): "
                                 f"{r.stderr.decode(errors='replace')}")
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key).start(cls.cls_procs)
        cls.port = cls.nginx.port

    def mock(self, partitions=4):
        return KafkaMock(self, self.mock_bin, self.tmp, partitions)

    def page(self):
        name = helpers.rand_token(12) + ".txt"
        body = helpers.rand_printable(200)
        self.nginx.write_file(name, body)
        return "/" + name

    def curl(self, paths):
        """Fetches every path over one connection; returns (pid, local port)."""
        args = ["curl", "-sS", "--http1.1", "--cacert", self.cert, "-w", "%{local_port}\n"]
        for p in paths:
            args += ["-o", "/dev/null", f"https://127.0.0.1:{self.port}{p}"]
        p = self.procs.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o, e = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, e.decode(errors="replace"))
        ports = set(o.decode().split())
        self.assertEqual(len(ports), 1, f"curl used more than one connection: {ports}")
        return p.pid, int(ports.pop())

    def ecapture_kafka(self, mock, fmt="json", extra=()):
        """ecapture on the nginx worker only (--pid): other agents' TLS traffic on this machine
        must not change the counts."""
        self.worker = self.nginx.worker_pids()[0]
        return self.run_ecapture(["tls", "--pid", str(self.worker), "--host-id", HOST_ID,
                                  "--format", fmt, "--eventaddr", mock.address, "--kafka-opt",
                                  "reconnect.backoff.max.ms=300", *extra])

    def conn_key(self, lport):
        """The key of nginx's side of curl's connection from local port `lport` (fd unknown)."""
        return re.compile(rf"^{HOST_ID}/{self.worker}/(\d+)/127\.0\.0\.1:{self.port}/"
                          rf"127\.0\.0\.1:{lport}$")

    def count_conn(self, mock, *lports):
        keys = [self.conn_key(p) for p in lports]
        return sum(1 for m in mock.messages() if any(k.match(m[2].decode()) for k in keys))

    def decode(self, fmt, value):
        """A consumed value as {pid, host, module, fd?, type, payload bytes}."""
        if fmt == "json":
            e = json.loads(value)
            self.assertEqual(e["payload_encoding"], "text")
            return {"pid": e["pid"], "host": e["host"], "module": e["source"], "fd": e["fd"],
                    "type": e["type"], "payload": e["payload"].encode(),
                    "src_port": e["src_port"], "dst_port": e["dst_port"]}
        entry = self.pb2.LogEntry()
        entry.ParseFromString(value)
        self.assertEqual(entry.log_type, self.pb2.LOG_TYPE_EVENT)
        ev = entry.event_payload
        return {"pid": ev.pid, "host": entry.host, "module": entry.module, "fd": None,
                "type": ev.type, "payload": ev.payload, "src_port": ev.src_port,
                "dst_port": ev.dst_port}

    def check_connection(self, fmt, msgs, lport, paths):
        """nginx's messages of curl's connection: request/response pairs in order, one key, one
        partition, exact request lines, host, pid, module."""
        key_re = self.conn_key(lport)
        mine = [(part, off, key.decode(), self.decode(fmt, val), hdr)
                for part, off, key, val, hdr in msgs if key_re.match(key.decode())]
        self.assertEqual(len(mine), 2 * len(paths),
                         f"messages of port {lport}: {[(m[2], m[3]['type']) for m in mine]}")
        self.assertEqual(len({m[2] for m in mine}), 1)
        fd = key_re.match(mine[0][2]).group(1)
        self.assertEqual(len({m[0] for m in mine}), 1, "one connection, one partition")
        offsets = [m[1] for m in mine]
        self.assertEqual(offsets, sorted(offsets))
        types = [m[3]["type"] for m in mine]
        self.assertEqual(types, [1, 3] * len(paths), "request, response, ... in order")
        lines = [m[3]["payload"].split(b"\r\n", 1)[0].decode() for m in mine if
                 m[3]["type"] == 1]
        self.assertEqual(lines, [f"GET {p} HTTP/1.1" for p in paths])
        for _, _, _, d, hdr in mine:
            self.assertEqual((d["pid"], d["host"], d["module"]), (self.worker, HOST_ID, "openssl"))
            self.assertEqual(hdr, {"host": HOST_ID, "module": "openssl", "pid": str(self.worker)})
            if d["fd"] is not None:
                self.assertEqual(fd, str(d["fd"]))
        # the request comes from curl's port, the response from nginx's
        self.assertEqual([(m[3]["src_port"], m[3]["dst_port"]) for m in mine],
                         [(lport, self.port), (self.port, lport)] * len(paths))

    def run_and_check(self, fmt):
        mock = self.mock()
        paths = [self.page() for _ in range(3)]
        with self.ecapture_kafka(mock, fmt) as run:
            _, lport = self.curl(paths)
            _, lport2 = self.curl(paths[:1])
            helpers.wait_until(lambda: self.count_conn(mock, lport, lport2) >= 8, 20)
            run.settle()
        msgs = mock.wait_count(kafka_summary(run, fmt, mock.address)[0])
        self.assertEqual(len(msgs), 8)
        self.check_connection(fmt, msgs, lport, paths)
        self.check_connection(fmt, msgs, lport2, paths[:1])
        delivered, _, dropped, queue_full, failed = kafka_summary(run, fmt, mock.address)
        self.assertEqual((delivered, dropped, queue_full, failed), (len(msgs), 0, 0, 0))
        self.assertEqual(processor_messages(run), delivered)

    def test_01_json_to_kafka(self):
        self.run_and_check("json")

    def test_02_protobuf_to_kafka(self):
        from test_outputs import load_ecaptureq_pb2
        self.pb2 = load_ecaptureq_pb2(self.tmp)
        self.run_and_check("protobuf")

    def status(self, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as r:
            return json.loads(r.read())["data"]

    def test_03_brokers_down_then_back(self):
        mock = self.mock()
        api = helpers.free_port()
        before = [self.page() for _ in range(2)]
        during = [[self.page() for _ in range(2)] for _ in range(3)]
        with self.ecapture_kafka(mock, "json", ["--listen", f"127.0.0.1:{api}"]) as run:
            _, lport0 = self.curl(before)
            helpers.wait_until(lambda: self.count_conn(mock, lport0) >= 4, 20)
            mock.command("down")
            t_down = time.monotonic()
            conns = [self.curl(ps)[1] for ps in during]
            run.settle()
            sink = self.status(api)["output"]["sinks"][0]
            self.assertEqual(sink["name"], mock.address)
            self.assertGreaterEqual(sink["queued"], 12, sink)  # 3 connections x 4 messages
            self.assertEqual(sink["messages"], 4, sink)
            consumed_while_down = len(mock.messages())
            time.sleep(max(0.0, 5.0 - (time.monotonic() - t_down)))
            self.assertEqual(len(mock.messages()), consumed_while_down,
                             "nothing is delivered while every broker is down")
            mock.command("up")
            want = self.status(api)["output"]["messages"]
            helpers.wait_until(lambda: len(mock.messages()) >= want, 30)
        msgs = mock.wait_count(processor_messages(run))
        self.assertEqual(len(msgs), 16)
        for lport, ps in zip([lport0] + conns, [before] + during):
            self.check_connection("json", msgs, lport, ps)
        delivered, _, dropped, queue_full, failed = kafka_summary(run, "json", mock.address)
        self.assertEqual((delivered, dropped, queue_full, failed), (len(msgs), 0, 0, 0))
        self.assertEqual(processor_messages(run), delivered)
        self.assertIn("all brokers are down", run.stderr_text())

    def test_04_small_queue_drops_exactly(self):
        mock = self.mock(partitions=1)
        api = helpers.free_port()
        bound = 4
        with self.ecapture_kafka(mock, "json", ["--listen", f"127.0.0.1:{api}", "--kafka-opt",
                                                f"queue.buffering.max.messages={bound}"]) as run:
            mock.command("down")
            conns = [self.curl([self.page()]) for _ in range(4)]  # 8 messages
            run.settle()
            out = self.status(api)["output"]
            sink = out["sinks"][0]
            self.assertEqual(out["messages"], 8)
            self.assertEqual((sink["messages"], sink["queue_full"], sink["dropped"]),
                             (0, out["messages"] - bound, out["messages"] - bound), out)
            self.assertGreaterEqual(sink["queued"], bound)  # also counts pending requests
            mock.command("up")
            mock.wait_count(bound)
            helpers.wait_until(lambda: self.status(api)["output"]["sinks"][0]["messages"] ==
                               bound, 10)
            time.sleep(0.5)
            status_sink = self.status(api)["output"]["sinks"][0]
        total = processor_messages(run)
        delivered, _, dropped, queue_full, failed = kafka_summary(run, "json", mock.address)
        msgs = mock.messages()
        self.assertEqual((delivered, len(msgs), dropped, queue_full, failed),
                         (bound, bound, total - bound, total - bound, 0))
        self.assertEqual((status_sink["messages"], status_sink["dropped"]), (bound, total - bound))
        self.assertEqual(len(conns), 4)

    def test_05_metrics(self):
        if not shutil.which("promtool"):
            self.fail("promtool not found (Debian package prometheus, scripts/setup.sh)")
        mock = self.mock()
        api = helpers.free_port()
        with self.ecapture_kafka(mock, "json", ["--listen", f"127.0.0.1:{api}"]) as run:
            _, lport = self.curl([self.page(), self.page()])
            helpers.wait_until(lambda: self.count_conn(mock, lport) >= 4, 20)
            run.settle()
            helpers.wait_until(
                lambda: self.status(api)["output"]["sinks"][0]["messages"] >= 4, 10)
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=10) as r:
                ctype = r.headers["Content-Type"]
                text = r.read().decode()
        self.assertEqual(ctype, "text/plain; version=0.0.4; charset=utf-8")
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=60)
        self.assertEqual((check.returncode, check.stdout + check.stderr), (0, b""), text)
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        events, nbytes, lost = run.summary()
        lbl = '{module="tls"}'
        self.assertEqual((values[f"ecapture_events_total{lbl}"],
                          values[f"ecapture_event_bytes_total{lbl}"],
                          values[f"ecapture_lost_records_total{lbl}"]), (events, nbytes, lost))
        sink = f'{{sink="{mock.address}",format="json"}}'
        delivered, nb, dropped, queue_full, failed = kafka_summary(run, "json", mock.address)
        self.assertEqual((values[f"ecapture_sink_messages_total{sink}"],
                          values[f"ecapture_sink_bytes_total{sink}"],
                          values[f"ecapture_sink_dropped_total{sink}"],
                          values[f"ecapture_kafka_queue_full_total{sink}"],
                          values[f"ecapture_kafka_delivery_failed_total{sink}"]),
                         (delivered, nb, dropped, queue_full, failed))
        self.assertEqual(values["ecapture_output_messages_total"], processor_messages(run))
        self.assertEqual((delivered, len(mock.messages())), (4, 4))
        self.assertEqual(values['ecapture_module_state{module="tls",state="running"}'], 1)
        self.assertEqual(values['ecapture_module_state{module="tls",state="error"}'], 0)
        self.assertEqual(values["ecapture_reloads_total"], 0)
        self.assertGreater(values["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(values["process_cpu_seconds_total"], 0)

    def test_06_bad_kafka_input(self):
        cases = [
            (["--eventaddr", "kafka://:9092/t"], "missing host in broker ':9092'"),
            (["--eventaddr", "kafka://127.0.0.1:9092"], "missing topic"),
            (["--eventaddr", "kafka://127.0.0.1:9092/a b"], "bad character ' ' in topic"),
            (["--eventaddr", "kafka://127.0.0.1:70000/t"], "bad port in broker"),
            (["--eventaddr", "kafka://127.0.0.1:9092/t", "--kafka-opt", "no.such=1"],
             'No such configuration property: "no.such"'),
            (["--eventaddr", "kafka://127.0.0.1:9092/t", "--kafka-opt", "acks"],
             "use key=value"),
            (["--eventaddr", "kafka://127.0.0.1:9092/t", "--kafka-opt",
              "compression.type=nope"], "--kafka-opt compression.type=nope: "),
            (["--kafka-opt", "acks=1"], "needs a kafka:// --eventaddr"),
            (["--host-id", "a/b"], "--host-id 'a/b': no whitespace"),
        ]
        for args, fragment in cases:
            with self.subTest(args=args):
                r = subprocess.run([helpers.BINARY, "tls", *args], capture_output=True,
                                   timeout=30, stdin=subprocess.DEVNULL)
                err = r.stderr.decode(errors="replace")
                self.assertNotEqual(r.returncode, 0, err)
                lines = err.splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertTrue(lines[0].startswith("ecapture: "), err)
                self.assertIn(fragment, lines[0])
                self.assertEqual(r.stdout, b"")


class Deploy(unittest.TestCase):
    """deploy/: the systemd unit and the DaemonSet (no root, no BPF)."""

    def test_systemd_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.fail("systemd-analyze not found (Debian package systemd)")
        with open(os.path.join(ROOT, "deploy/ecapture.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/local/bin/ecapture $ECAPTURE_MODULE --host-id %H "
                      "--format protobuf \\\n    --eventaddr ${ECAPTURE_KAFKA}", unit)
        self.assertIn("Environment=ECAPTURE_KAFKA=kafka://", unit)
        self.assertIn("--listen ${ECAPTURE_LISTEN}", unit)
        with tempfile.TemporaryDirectory() as d:
            # verify checks that the binary exists: point it at the one under test.
            binary = helpers.BINARY or shutil.which("true")
            path = os.path.join(d, "ecapture.service")
            with open(path, "w") as f:
                f.write(unit.replace("/usr/local/bin/ecapture", binary))
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                               timeout=60)
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""))

    def test_daemonset_manifest(self):
        sys_path = "/usr/lib/python3/dist-packages"
        import sys
        if sys_path not in sys.path:
            sys.path.append(sys_path)
        import yaml
        with open(os.path.join(ROOT, "deploy/daemonset.yaml")) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        self.assertEqual(len(docs), 1)
        ds = docs[0]
        self.assertEqual((ds["apiVersion"], ds["kind"]), ("apps/v1", "DaemonSet"))
        self.assertTrue(ds["metadata"]["name"])
        spec = ds["spec"]
        tmpl = spec["template"]
        labels = tmpl["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        pod = tmpl["spec"]
        self.assertIs(pod["hostPID"], True)
        (c,) = pod["containers"]
        self.assertIs(c["securityContext"]["privileged"], True)
        self.assertTrue(c["image"])
        args = c["args"]
        self.assertEqual(args[0], "tls")
        kafka = [a for a in args if a.startswith("--eventaddr=kafka://")]
        self.assertEqual(len(kafka), 1)
        self.assertRegex(kafka[0], r"^--eventaddr=kafka://[^/]+(,[^/]+)*/[A-Za-z0-9._-]+$")
        self.assertIn("--host-id=$(NODE_NAME)", args)
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")
        self.assertIn("secretKeyRef", env["ECAPTURE_LISTEN_TOKEN"]["valueFrom"])
        (listen,) = [a for a in args if a.startswith("--listen=")]
        port = int(listen.rsplit(":", 1)[1])
        self.assertIn(port, [p["containerPort"] for p in c["ports"]])
        self.assertEqual(tmpl["metadata"]["annotations"]["prometheus.io/port"], str(port))
        self.assertEqual(tmpl["metadata"]["annotations"]["prometheus.io/path"], "/metrics")
        volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        self.assertEqual(set(mounts), set(volumes))
        for path in ("/sys/kernel/btf", "/sys/fs/cgroup"):
            self.assertIn(path, volumes.values())
            self.assertIn(path, mounts.values())
        # every argument is one ecapture accepts
        if helpers.BINARY:
            helptext = ""
            for cmd in (["--help"], ["tls", "--help"]):
                r = subprocess.run([helpers.BINARY, *cmd], capture_output=True, timeout=30)
                helptext += r.stdout.decode()
            for a in args[1:]:
                self.assertIn(a.split("=", 1)[0], helptext)


if __name__ == "__main__":
    unittest.main()
