"""mysqld and postgres audit modules against a real MariaDB server and PostgreSQL cluster started
by the tests on 127.0.0.1 (reference/targets.md §6, §7): every statement reported once, with its
exact text, command type, status and the server's pid."""
import os
import re
import shutil
import signal
import subprocess
import time

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "sql")
MARIADBD = "/usr/sbin/mariadbd"
PG_BIN = "/usr/lib/postgresql/15/bin"

parse_audit = helpers.parse_audit


def describe(records):
    return helpers.describe_audit(records)


def filler(n, seed):
    """n bytes of varied ASCII letters/digits (deterministic)."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(alphabet[(i * 7 + seed + i // 61) % len(alphabet)] for i in range(n))


def cc(test, source, output, flags):
    res = subprocess.run(["cc", "-O1", "-o", output, source] + flags, capture_output=True,
                         timeout=120)
    if res.returncode != 0:
        test.fail(f"cannot build {source}: {res.stderr.decode(errors='replace')}")
    return output


def wait_settled(run, predicate, timeout=10.0):
    """Waits until predicate(records) is true (records parsed from ecapture's stdout)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = parse_audit(run.stdout_bytes()) if os.path.getsize(run.stdout_path) else []
        if predicate(recs) or time.monotonic() > deadline:
            return recs
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# MariaDB


class MariaDb:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "mariadb")
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "mysqld.sock")
        self.port = None
        self.proc = None

    def start(self, procs):
        res = subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--user=root",
             f"--datadir={self.dir}/data", "--auth-root-authentication-method=normal",
             "--skip-test-db"], capture_output=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {res.stderr.decode()[-2000:]}")
        self.port = helpers.free_port()
        log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = procs.popen(
            [MARIADBD, "--no-defaults", "--user=root", f"--datadir={self.dir}/data",
             f"--socket={self.sock}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--pid-file={self.dir}/mysqld.pid", f"--log-error={self.dir}/error.log",
             "--skip-log-bin", "--innodb-buffer-pool-size=64M"],
            stopper=self.stop, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        ok = helpers.wait_until(lambda: self.proc.poll() is not None or subprocess.run(
            ["mariadb-admin", "--no-defaults", "-uroot", f"--socket={self.sock}", "ping"],
            capture_output=True).returncode == 0, 30, 0.1)
        if not ok or self.proc.poll() is not None:
            with open(os.path.join(self.dir, "error.log"), "rb") as f:
                raise RuntimeError(f"mariadbd did not start: {f.read().decode()[-2000:]}")
        return self

    @staticmethod
    def stop(p, timeout=30.0):
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    def client(self, *args, stdin=None, check=True):
        res = subprocess.run(["mariadb", "--no-defaults", "-uroot", "-h127.0.0.1",
                              f"-P{self.port}"] + list(args), input=stdin, capture_output=True,
                             timeout=60)
        if check and res.returncode != 0:
            raise AssertionError(f"mariadb {args!r} failed: {res.stderr.decode()}")
        return res


class MysqldAudit(helpers.E2ETestCase):
    def setUp(self):
        super().setUp()
        for tool in ("mariadb-install-db", "mariadb", "cc"):
            if shutil.which(tool) is None:
                self.fail(f"{tool} missing: run scripts/setup.sh")
        self.db = MariaDb(self.tmp).start(self.procs)

    def test_queries_errors_and_prepared_statements(self):
        if shutil.which("mariadb_config") is None:
            self.fail("libmariadb-dev (mariadb_config) missing: run scripts/setup.sh")
        flags = subprocess.run(["mariadb_config", "--cflags", "--libs"], capture_output=True,
                               text=True).stdout.split()
        stmt_client = cc(self, os.path.join(FIXTURES, "mysql_stmt_client.c"),
                         os.path.join(self.tmp, "stmt_client"), flags)
        token = helpers.rand_token()
        simple = f"select '{token}-simple' as v, 40+2 as answer"
        big = f"select '{token}-big', length('{filler(20 * 1024, 3)}') as n"
        huge = f"select '{token}-huge', length('{filler(100 * 1024, 5)}') as n"
        bad = f"selec '{token}-bad'"
        prepare = f"prepare s_{token} from 'select ? * 3 as q{token}_sql'"
        execute = f"execute s_{token} using 14"
        binary = f"select ? * 2 as q{token}_bin"

        with self.run_ecapture(["mysqld"]) as run:
            self.assertIn(f"server: {MARIADBD}", run.stderr_text())
            self.assertEqual(self.db.client("-e", simple).stdout.split(b"\n")[1], f"{token}-simple\t42".encode())
            self.db.client("-e", big)
            self.db.client(stdin=(huge + ";\n").encode())
            r = self.db.client("-e", bad, check=False)
            self.assertIn(b"ERROR 1064", r.stderr)
            out = self.db.client("-N", "-e", f"{prepare}; {execute}").stdout
            self.assertEqual(out.strip(), b"42")
            res = subprocess.run([stmt_client, str(self.db.port), binary, "21"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(res.returncode, 0, res.stderr)
            m = re.fullmatch(r"result=42 stmt_id=(\d+)\n", res.stdout)
            self.assertIsNotNone(m, res.stdout)
            stmt_id = m.group(1)
            recs = wait_settled(run, lambda rs: sum(r.type == "COM_STMT_CLOSE" for r in rs) >= 1)
        recs = parse_audit(run.stdout_bytes())
        mine = [r for r in recs if token.encode() in r.text]
        info = describe(recs)

        def one(text, type_="COM_QUERY"):
            sel = [r for r in mine if r.text == text.encode() and r.type == type_]
            self.assertEqual(len(sel), 1, f"expected one {type_} {text[:60]!r}:\n{info}")
            r = sel[0]
            self.assertEqual((r.kind, r.pid, r.comm), ("mysqld", self.db.proc.pid, "mariadbd"), r)
            self.assertEqual(r.length, len(text), r)
            self.assertIsNotNone(r.duration_ns, r)
            self.assertLess(r.duration_ns, 10 * 10**9, r)
            return r

        for text in (simple, big, huge, prepare, execute):
            r = one(text)
            self.assertEqual(r.status, 0, r)
            self.assertNotIn("error", r.attrs, r)
        r = one(bad)
        self.assertEqual(r.status, 1064, r)
        self.assertIn("You have an error in your SQL syntax", r.attrs["error"])
        self.assertIn(f"'{token}-bad'", r.attrs["error"])

        p = one(binary, "COM_STMT_PREPARE")
        self.assertEqual((p.status, p.attrs.get("stmt_id")), (0, stmt_id), p)
        for type_ in ("COM_STMT_EXECUTE", "COM_STMT_CLOSE"):
            r = one(binary, type_)
            self.assertEqual((r.status, r.attrs.get("stmt_id"), r.tid), (0, stmt_id, p.tid), r)
        # exactly these 9 records carry the token (nothing reported twice)
        self.assertEqual(len(mine), 9, info)
        quits = [r for r in recs if r.type == "COM_QUIT"]
        self.assertGreaterEqual(len(quits), 6, info)
        self.assertTrue(all(r.status == 0 and r.text == b"" for r in quits), info)


    def test_pid_filter_and_offset(self):
        """--pid: only that server (located through /proc/<pid>/exe); --offset: the address of
        dispatch_command as nm shows it hooks the same function."""
        other_tmp = helpers.make_tmpdir(self)
        other = MariaDb(other_tmp).start(self.procs)
        token = helpers.rand_token()
        with self.run_ecapture(["--pid", str(self.db.proc.pid), "mysqld"], name="pid") as run:
            self.assertIn(f"server: {MARIADBD}", run.stderr_text())
            self.db.client("-e", f"select '{token}-mine'")
            other.client("-e", f"select '{token}-other'")
            wait_settled(run, lambda rs: any(token.encode() in r.text for r in rs))
            # A later statement of the same server: once it is out, so is all that came before.
            barrier = helpers.rand_token()
            self.db.client("-e", f"select '{barrier}'")
            wait_settled(run, lambda rs: any(barrier.encode() in r.text for r in rs))
        recs = parse_audit(run.stdout_bytes())
        mine = [r for r in recs if token.encode() in r.text]
        self.assertEqual([(r.text, r.pid) for r in mine],
                         [(f"select '{token}-mine'".encode(), self.db.proc.pid)], describe(recs))
        self.assertTrue(all(r.pid == self.db.proc.pid for r in recs), describe(recs))

        nm = subprocess.run(["nm", "-D", "--defined-only", MARIADBD], capture_output=True,
                            text=True, timeout=60).stdout
        addr = next(line.split()[0] for line in nm.splitlines()
                    if line.endswith(" _Z16dispatch_command19enum_server_commandP3THDPcjb"))
        with self.run_ecapture(["mysqld", "--mysqld", MARIADBD, "--offset", f"0x{addr}"],
                               name="offset") as run:
            self.assertIn(f"hooking offset 0x{int(addr, 16):x}", run.stderr_text())
            other.client("-e", f"select '{token}-offset'")
            recs = wait_settled(run, lambda rs: any(token.encode() in r.text for r in rs))
        mine = [r for r in parse_audit(run.stdout_bytes()) if token.encode() in r.text]
        self.assertEqual([(r.text, r.pid, r.type, r.status) for r in mine],
                         [(f"select '{token}-offset'".encode(), other.proc.pid, "COM_QUERY", 0)])


# ---------------------------------------------------------------------------------------------
# PostgreSQL


class PgCluster:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        os.chmod(tmp, 0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = None
        self.started = False

    def _pg(self, *args, timeout=60):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + list(args),
                              capture_output=True, timeout=timeout)

    def start(self, testcase):
        r = self._pg(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                     "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.decode()[-2000:]}")
        self.port = helpers.free_port()
        testcase.addCleanup(self.stop)
        self.started = True
        r = self._pg(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                     "-w", "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} "
                                 f"-c unix_socket_directories={self.dir} -c fsync=off", "start")
        if r.returncode != 0:
            with open(os.path.join(self.dir, "log"), "rb") as f:
                raise RuntimeError(f"pg_ctl start failed: {f.read().decode()[-2000:]}")
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.postmaster = int(f.readline())
        return self

    def stop(self):
        if self.started:
            self.started = False
            r = self._pg(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
            if r.returncode != 0 and os.path.exists(f"/proc/{self.postmaster}"):
                os.kill(self.postmaster, signal.SIGKILL)

    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def psql(self, *args):
        res = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-X", "-Atq"] + list(args), capture_output=True, timeout=60)
        if res.returncode != 0:
            raise AssertionError(f"psql {args!r} failed: {res.stderr.decode()}")
        return res.stdout.decode()


class PostgresAudit(helpers.E2ETestCase):
    def setUp(self):
        super().setUp()
        for tool in ("psql", "pgbench", "cc", "pg_config"):
            if shutil.which(tool) is None:
                self.fail(f"{tool} missing: run scripts/setup.sh")
        self.pg = PgCluster(self.tmp).start(self)

    def test_simple_and_extended_protocol(self):
        incdir = subprocess.run(["pg_config", "--includedir"], capture_output=True,
                                text=True).stdout.strip()
        client = cc(self, os.path.join(FIXTURES, "pg_prepared_client.c"),
                    os.path.join(self.tmp, "pg_client"), [f"-I{incdir}", "-lpq"])
        token = helpers.rand_token()
        self.pg.psql("-c", f"create table t_{token}(a int); insert into t_{token} values (1)")
        simple = f"select pg_backend_pid(), '{token}-simple'"
        big = f"select pg_backend_pid(), length('{filler(20 * 1024, 7)}') as q{token}_big"
        huge = f"select pg_backend_pid(), length('{filler(100 * 1024, 9)}') as q{token}_huge"
        script = os.path.join(self.tmp, "bench.sql")
        bench = f"select a + 1 as q{token}_bench from t_{token} where a = 1;"
        with open(script, "w") as f:
            f.write(bench + "\n")
        prepared = f"select $1::int * 2 as q{token}_prep"

        with self.run_ecapture(["postgres"]) as run:
            self.assertIn(f"server: {PG_BIN}/postgres (PostgreSQL 15.", run.stderr_text())
            pid_simple = int(self.pg.psql("-c", simple).split("|")[0])
            pid_big = int(self.pg.psql("-c", big).split("|")[0])
            huge_file = os.path.join(self.tmp, "huge.sql")
            with open(huge_file, "w") as f:
                f.write(huge)
            pid_huge = int(self.pg.psql("-f", huge_file).split("|")[0])
            res = subprocess.run(["pgbench", "-n", "-h", "127.0.0.1", "-p", str(self.pg.port),
                                  "-U", "postgres", "-M", "extended", "-t", "3", "-f", script,
                                  "postgres"], capture_output=True, timeout=60)
            self.assertEqual(res.returncode, 0, res.stderr)
            res = subprocess.run([client, self.pg.conninfo(), prepared, "5"], capture_output=True,
                                 text=True, timeout=30)
            self.assertEqual(res.returncode, 0, res.stderr)
            m = re.fullmatch(r"backend_pid=(\d+)\nresult=10\nresult=12\n", res.stdout)
            self.assertIsNotNone(m, res.stdout)
            pid_client = int(m.group(1))
            recs = wait_settled(run, lambda rs: sum(prepared.encode() == r.text for r in rs) >= 3)
        recs = parse_audit(run.stdout_bytes())
        info = describe(recs)

        def select(text):
            return [r for r in recs if r.text == text.encode()]

        def check(r, pid):
            self.assertEqual((r.kind, r.pid, r.tid, r.comm, r.type), ("postgres", pid, pid,
                                                                     "postgres", "QUERY"), r)
            self.assertEqual(r.uid, helpers.read_uid(self.pg.postmaster), r)
            self.assertIsNotNone(r.duration_ns, r)

        for text, pid in ((simple, pid_simple), (big, pid_big), (huge, pid_huge)):
            sel = select(text)
            self.assertEqual(len(sel), 1, f"{text[:60]!r}:\n{info}")
            check(sel[0], pid)
            self.assertEqual(sel[0].length, len(text))
        # pgbench -M extended: Parse/Bind/Execute per transaction, one record each
        sel = select(bench)
        self.assertEqual(len(sel), 3, info)
        for r in sel:
            check(r, sel[0].pid)
        self.assertNotIn(sel[0].pid, (pid_simple, pid_big, pid_huge, pid_client))
        # PQprepare (Parse) and two PQexecPrepared (Bind/Execute): three records
        sel = select(prepared)
        self.assertEqual(len(sel), 3, info)
        for r in sel:
            check(r, pid_client)
        self.assertEqual(len([r for r in recs if token.encode() in r.text]), 3 + 3 + 3, info)


    def test_funcname_pg_parse_query(self):
        """-f pg_parse_query: one record per parsed statement, duration unknown."""
        token = helpers.rand_token()
        simple = f"select '{token}-parse', pg_backend_pid()"
        with self.run_ecapture(["postgres", "-f", "pg_parse_query"]) as run:
            self.assertIn("hooking pg_parse_query", run.stderr_text())
            pid = int(self.pg.psql("-c", simple).split("|")[1])
            recs = wait_settled(run, lambda rs: any(token.encode() in r.text for r in rs))
            # A later statement: once it is out, so is everything of the first one.
            barrier = helpers.rand_token()
            self.pg.psql("-c", f"select '{barrier}'")
            wait_settled(run, lambda rs: any(barrier.encode() in r.text for r in rs))
        recs = [r for r in parse_audit(run.stdout_bytes()) if token.encode() in r.text]
        self.assertEqual([(r.text, r.pid, r.type, r.duration_ns) for r in recs],
                         [(simple.encode(), pid, "QUERY", None)])


# ---------------------------------------------------------------------------------------------
# bad input


class SqlBadInput(helpers.E2ETestCase):
    def run_bad(self, args):
        res = subprocess.run([helpers.BINARY] + args, capture_output=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        err = res.stderr.decode(errors="replace")
        self.assertGreater(res.returncode, 0, err)
        lines = [l for l in err.splitlines() if l.startswith("ecapture: ")]
        self.assertEqual(len(lines), 1, err)
        self.assertEqual(res.stdout, b"")
        return lines[0]

    def test_mysqld_not_a_server(self):
        line = self.run_bad(["mysqld", "--mysqld", "/bin/ls"])
        self.assertIn("/bin/ls is not a MySQL/MariaDB server", line)
        self.assertIn("--mysqld", line)

    def test_mysqld_bad_funcname(self):
        line = self.run_bad(["mysqld", "--mysqld", MARIADBD, "-f", "no_such_function"])
        self.assertIn("--funcname no_such_function: no such function in " + MARIADBD, line)

    def test_postgres_missing_binary(self):
        line = self.run_bad(["postgres", "--postgres", "/nonexistent"])
        self.assertIn("/nonexistent", line)
        self.assertIn("no such file", line)

    def test_postgres_static_function(self):
        line = self.run_bad(["postgres", "--postgres", f"{PG_BIN}/postgres", "-f",
                             "exec_simple_query"])
        self.assertIn("--funcname exec_simple_query: not exported", line)
