"""Shared tooling for ecapture's end-to-end tests (Python standard library only).

- temp dirs, a self-signed certificate, free ports;
- nginx on 127.0.0.1 with a config under a temp dir;
- `Procs`: every process a test starts, stopped by pid in cleanup even when the test fails;
- `ecapture(...)`: a context manager running ecapture as a subprocess until `capture started`;
- `parse_output(...)`: a strict parser of ecapture's text output (fails loudly on malformed bytes);
- bpftool id snapshots.
"""
import contextlib
import dataclasses
import datetime
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import threading
import time
import unittest

# Set by run.py (or the ECAPTURE_BINARY environment variable).
BINARY = os.environ.get("ECAPTURE_BINARY", "")
# The Debian python (the one on PATH may be a pyenv build, see reference/targets.md §0).
DEBIAN_PYTHON = "/usr/bin/python3.11"
SYSTEM_LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
KEEP_TMP = os.environ.get("ECAPTURE_E2E_KEEP") == "1"

READY_FRAGMENT = b"capture started"
READY_TIMEOUT = 20.0


def skip_reason():
    """Why the e2e suite cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root (e2e tests attach eBPF uprobes)"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "/sys/kernel/btf/vmlinux missing (no kernel BTF)"
    return None


# ---------------------------------------------------------------------------------------------
# small utilities


def make_tmpdir(testcase, prefix="ecap-e2e-"):
    """A temp dir removed at cleanup (kept when ECAPTURE_E2E_KEEP=1)."""
    path = tempfile.mkdtemp(prefix=prefix)
    if not KEEP_TMP:
        testcase.addCleanup(shutil.rmtree, path, True)
    return path


def rand_token(n=12):
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def rand_printable(n):
    """n random printable ASCII bytes (letters and digits)."""
    alphabet = (string.ascii_letters + string.digits).encode()
    return bytes(secrets.choice(alphabet) for _ in range(n))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory):
    """Self-signed P-256 certificate for localhost/127.0.0.1; returns (cert, key) paths."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return cert, key


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def children_of(pid):
    """Direct children of pid (from /proc/<pid>/task/*/children)."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def read_uid(pid):
    """Real uid of a process."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


def read_comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().rstrip("\n")


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


class LineReader:
    """Reads lines of a child's pipe in a background thread; get() waits with a timeout."""

    def __init__(self, pipe, what="child"):
        self._q = queue.Queue()
        self.what = what
        self.lines = []
        self._t = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._t.start()

    def _run(self, pipe):
        try:
            for line in iter(pipe.readline, b""):
                self._q.put(line)
        except (OSError, ValueError):
            pass
        self._q.put(None)

    def get(self, timeout=20.0):
        try:
            line = self._q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.what}: no output line within {timeout} s "
                                 f"(so far: {self.lines!r})")
        if line is None:
            raise AssertionError(f"{self.what}: output ended (so far: {self.lines!r})")
        self.lines.append(line)
        return line

    def get_json(self, timeout=20.0):
        line = self.get(timeout)
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError(f"{self.what}: expected a JSON line, got {line!r}")


# ---------------------------------------------------------------------------------------------
# process tracking


class Procs:
    """Processes started by a test. stop_all() stops each one by pid (SIGKILL unless a stopper was
    given), then reaps it. Register with testcase.addCleanup(procs.stop_all)."""

    def __init__(self):
        self._items = []  # (Popen, stopper or None)

    def popen(self, args, stopper=None, **kw):
        p = subprocess.Popen(args, **kw)
        self._items.append((p, stopper))
        return p

    def add(self, p, stopper=None):
        self._items.append((p, stopper))
        return p

    def stop_all(self):
        errors = []
        for p, stopper in reversed(self._items):
            try:
                if stopper is not None:
                    stopper(p)
                elif p.poll() is None:
                    _kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)
            except Exception as e:  # keep stopping the others
                errors.append(f"pid {p.pid}: {e!r}")
            for stream in (p.stdin, p.stdout, p.stderr):
                if stream:
                    with contextlib.suppress(Exception):
                        stream.close()
        self._items.clear()
        if errors:
            raise RuntimeError("cleanup: " + "; ".join(errors))


# ---------------------------------------------------------------------------------------------
# nginx

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {t}/nginx.pid;
error_log {t}/error.log info;
worker_rlimit_nofile {nofile};
events {{ worker_connections {conns}; }}
http {{
    access_log {t}/access.log;
    client_body_temp_path {t}/client_body_temp;
    proxy_temp_path {t}/proxy_temp;
    fastcgi_temp_path {t}/fastcgi_temp;
    uwsgi_temp_path {t}/uwsgi_temp;
    scgi_temp_path {t}/scgi_temp;
    default_type application/octet-stream;
    keepalive_timeout {keepalive};
    server {{
        listen 127.0.0.1:{port} ssl{http2};
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 16m;
        root {root};
        location = /upload {{ return 200 "uploaded\\n"; }}
{extra}    }}
}}
"""


class Nginx:
    """nginx serving static files from `root` over TLS on 127.0.0.1:port."""

    # For Nginx(..., gzip=True): files under /gz/ are served gzip-compressed to clients that
    # accept it.
    GZIP_LOCATION = ("        location /gz/ { gzip on; gzip_types *; gzip_min_length 1; "
                     "gzip_comp_level 6; }\n")

    def __init__(self, tmp, cert, key, http2=False, gzip=False, log_format=None,
                 worker_connections=128, keepalive="120s"):
        """log_format: an nginx log_format string for access.log (e.g. with $remote_port);
        access_log_lines() returns what it logged."""
        self.log_format = log_format
        self.worker_connections = worker_connections
        self.keepalive = keepalive
        self.dir = os.path.join(tmp, "nginx")
        self.root = os.path.join(self.dir, "www")
        os.makedirs(self.root)
        # Workers run as nginx's default unprivileged user: let them reach the static files.
        for d in (tmp, self.dir, self.root):
            os.chmod(d, 0o755)
        self.cert, self.key = cert, key
        self.http2, self.gzip = http2, gzip
        self.port = None
        self.proc = None
        self.url = None

    def start(self, procs, timeout=10.0, port=None):
        """Starts on `port`, else on a free port (retried when another process takes it)."""
        last_err = ""
        for _ in range(1 if port else 3):
            self.port = port or free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(t=self.dir, port=self.port, cert=self.cert,
                                          key=self.key, root=self.root,
                                          conns=self.worker_connections,
                                          keepalive=self.keepalive,
                                          nofile=min(max(1024, self.worker_connections + 500),
                                                     20000),
                                          http2=" http2" if self.http2 else "",
                                          extra=self.GZIP_LOCATION if self.gzip else "")
                        .replace(f"    access_log {self.dir}/access.log;\n",
                                 f"    log_format ecap '{self.log_format}';\n"
                                 f"    access_log {self.dir}/access.log ecap;\n"
                                 if self.log_format else
                                 f"    access_log {self.dir}/access.log;\n"))
            errlog = open(os.path.join(self.dir, "stderr.log"), "wb")
            self.proc = procs.popen(
                ["nginx", "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                stopper=self.stop, stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog)
            errlog.close()
            if wait_until(lambda: self._listening() or self.proc.poll() is not None, timeout) \
                    and self.proc.poll() is None and self._listening():
                self.url = f"https://127.0.0.1:{self.port}"
                # the worker must exist before tests look for it
                wait_until(lambda: self.worker_pids(), 5)
                return self
            self.stop(self.proc)
            with open(os.path.join(self.dir, "error.log"), "rb") as f:
                last_err = f.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"nginx did not start: {last_err}")

    def _listening(self):
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def worker_pids(self):
        return children_of(self.proc.pid) if self.proc else []

    def access_log_lines(self):
        try:
            with open(os.path.join(self.dir, "access.log"), "rb") as f:
                return f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def write_file(self, name, data):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        return path

    @staticmethod
    def stop(p, timeout=5.0):
        """SIGQUIT to the master (graceful), SIGKILL after the timeout; workers by pid too."""
        if p.poll() is not None:
            return
        workers = children_of(p.pid)
        _kill(p.pid, signal.SIGQUIT)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        for w in workers:  # a killed master leaves its workers running
            if os.path.exists(f"/proc/{w}"):
                _kill(w, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# ecapture as a subprocess


class EcaptureRun:
    def __init__(self, proc, stdout_path, stderr_path, args):
        self.proc = proc
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.args = args
        self.returncode = None
        self.stop_seconds = None  # from the signal to the exit

    @property
    def pid(self):
        return self.proc.pid

    def stdout_bytes(self):
        with open(self.stdout_path, "rb") as f:
            return f.read()

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def blocks(self):
        return parse_output(self.stdout_bytes())

    def summary(self):
        """(events, bytes, lost) from the summary line, or None."""
        m = re.search(r"summary: events=(\d+) bytes=(\d+) lost=(\d+)", self.stderr_text())
        return tuple(int(x) for x in m.groups()) if m else None

    def settle(self, quiet=0.5, timeout=5.0):
        """Waits until stdout has stopped growing for `quiet` seconds (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            size = os.path.getsize(self.stdout_path)
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.05)

    def describe(self):
        return (f"command: {' '.join(self.args)}\nexit: {self.returncode}\n"
                f"--- stderr ---\n{self.stderr_text()[-6000:]}")

    def stop(self, sig=signal.SIGINT, timeout=10.0):
        if self.proc.poll() is None:
            t0 = time.monotonic()
            _kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=timeout)
                self.stop_seconds = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                _kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        return self.returncode


def wait_ready(run, ready_timeout=READY_TIMEOUT, fragment=READY_FRAGMENT, path=None):
    """Waits for `fragment` in ecapture's stderr (or `path`); returns True, or False if ecapture
    exited or the timeout passed."""
    path = path or run.stderr_path

    def ready():
        with open(path, "rb") as f:
            if fragment in f.read():
                return True
        return run.proc.poll() is not None

    wait_until(ready, ready_timeout)
    with open(path, "rb") as f:
        return fragment in f.read() and run.proc.poll() is None


@contextlib.contextmanager
def ecapture(testcase, tmp, args, procs=None, expect_rc=0, ready_timeout=READY_TIMEOUT,
             stop_signal=signal.SIGINT, name="ecapture", env=None):
    """Runs `BINARY *args` with stdout/stderr to files in tmp, waits for `capture started` on
    stderr (failing the test with stderr on timeout), yields an EcaptureRun; on exit sends
    stop_signal, waits, and asserts the exit status is expect_rc (unless expect_rc is None or the
    body raised). `env` adds variables to the environment of ecapture."""
    if not BINARY or not os.access(BINARY, os.X_OK):
        testcase.fail(f"ecapture binary not found or not executable: {BINARY!r}")
    out_path = os.path.join(tmp, f"{name}.stdout")
    err_path = os.path.join(tmp, f"{name}.stderr")
    argv = [BINARY] + list(args)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=dict(os.environ, **(env or {})))
    run = EcaptureRun(proc, out_path, err_path, argv)
    if procs is not None:
        procs.add(proc, stopper=lambda p: run.stop(signal.SIGKILL) if p.poll() is None else None)
    try:
        if not wait_ready(run, ready_timeout):
            state = "exited" if proc.poll() is not None else f"no '{READY_FRAGMENT.decode()}' " \
                                                              f"within {ready_timeout:.0f} s"
            run.stop(signal.SIGKILL) if proc.poll() is None else run.stop()
            testcase.fail(f"ecapture did not start ({state}).\n{run.describe()}")
        yield run
    except BaseException:
        run.stop(stop_signal)
        raise
    run.stop(stop_signal)
    if run.returncode is None or (expect_rc is not None and run.returncode != expect_rc):
        testcase.fail(f"ecapture exited with {run.returncode}, expected {expect_rc} after "
                      f"{stop_signal.name}.\n{run.describe()}")


# ---------------------------------------------------------------------------------------------
# the output parser

HEADER_RE = re.compile(
    rb"\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\] (?P<dir>WRITE|READ) "
    rb"pid=(?P<pid>\d+) tid=(?P<tid>\d+) uid=(?P<uid>\d+) comm=(?P<comm>\S+)"
    rb"(?: container=(?P<container>\S+))? fd=(?P<fd>-?\d+) "
    rb"(?P<src>\S+) -> (?P<dst>\S+) len=(?P<len>\d+)(?: shown=(?P<shown>\d+))?(?P<hex> hex)?"
    # parsed messages (README "Usage"): the protocol, the HTTP/2 stream, a cut message
    rb"(?: proto=(?P<proto>HTTP/1\.1|HTTP/2)(?: stream=(?P<stream>\d+))?(?P<partial> partial)?)?")
ENDPOINT_RE = re.compile(r"^(?:\?|(\d{1,3}(?:\.\d{1,3}){3}):(\d+)|\[([0-9a-fA-F:.]+)\]:(\d+))$")
# `hexdump -C` layout: two groups of 8 bytes separated by an extra space.
HEXLINE_RE = re.compile(rb"([0-9a-f]{8})  ((?:[0-9a-f]{2} ){1,8}(?: (?:[0-9a-f]{2} ){1,8})?)\s*\|(.*)\|")


class ParseError(AssertionError):
    pass


@dataclasses.dataclass
class Block:
    ts: str
    direction: str  # "WRITE" | "READ"
    pid: int
    tid: int
    uid: int
    comm: str
    fd: int
    src: str
    dst: str
    length: int
    shown: int  # == length unless truncated
    hex: bool
    payload: bytes  # the shown bytes (decoded from the hexdump when hex)
    offset: int  # where the block starts in stdout
    proto: str = ""  # "HTTP/1.1" or "HTTP/2" for a parsed message, "" for a raw block
    stream: int = 0  # HTTP/2 stream id
    partial: bool = False  # a parsed message cut by an idle flush, a size limit or shutdown
    container: str = None  # the short container id, when the process's cgroup names one

    @property
    def truncated(self):
        return self.shown < self.length

    def header(self):
        return (f"[{self.ts}] {self.direction} pid={self.pid} tid={self.tid} uid={self.uid} "
                f"comm={self.comm}" + (f" container={self.container}" if self.container else "")
                + f" fd={self.fd} {self.src} -> {self.dst} len={self.length}"
                + (f" shown={self.shown}" if self.truncated else "") + (" hex" if self.hex else "")
                + (f" proto={self.proto}" if self.proto else "")
                + (f" stream={self.stream}" if self.stream else "")
                + (" partial" if self.partial else ""))


def _snippet(data, pos):
    return repr(data[max(0, pos - 80):pos + 160])


def _parse_endpoint(text, data, pos):
    if not ENDPOINT_RE.match(text):
        raise ParseError(f"bad endpoint {text!r} in header at offset {pos}: {_snippet(data, pos)}")
    return text


def _parse_hexdump(data, pos, count, start):
    """Parses hexdump lines from pos until an empty line; returns (bytes, new pos)."""
    out = bytearray()
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ParseError(f"unterminated hexdump of block at offset {start}: {_snippet(data, pos)}")
        line = data[pos:nl]
        pos = nl + 1
        if line == b"":
            break
        m = HEXLINE_RE.fullmatch(line)
        if not m:
            raise ParseError(f"bad hexdump line at offset {pos - len(line) - 1} "
                             f"(block at {start}): {line!r}")
        off = int(m.group(1), 16)
        if off != len(out):
            raise ParseError(f"hexdump offset {off:08x} != expected {len(out):08x} at block {start}")
        chunk = bytes.fromhex(m.group(2).decode())
        ascii_col = m.group(3)
        if len(ascii_col) != len(chunk):
            raise ParseError(f"hexdump ascii column length {len(ascii_col)} != {len(chunk)} bytes "
                             f"at block {start}: {line!r}")
        for b, a in zip(chunk, ascii_col):
            if 0x20 <= b < 0x7f and a != b:
                raise ParseError(f"hexdump ascii column shows {chr(a)!r} for byte {b:#04x} "
                                 f"at block {start}: {line!r}")
        if len(chunk) < 16 and len(out) + len(chunk) != count:
            raise ParseError(f"short hexdump line in the middle of block {start}: {line!r}")
        out += chunk
    if len(out) != count:
        raise ParseError(f"hexdump of block at offset {start} has {len(out)} bytes, header says "
                         f"{count}")
    return bytes(out), pos


def parse_output(data, partial=False):
    """Parses ecapture's stdout (bytes) into Blocks. Raises ParseError on anything malformed.
    With partial=True an incomplete last block is ignored (for polling a running capture)."""
    blocks = []
    pos = 0
    n = len(data)
    while pos < n:
        start = pos
        try:
            nl = data.find(b"\n", pos)
            if nl < 0:
                raise ParseError(f"header line without newline at offset {pos}: {_snippet(data, pos)}")
            line = data[pos:nl]
            m = HEADER_RE.fullmatch(line)
            if not m:
                raise ParseError(f"malformed header at offset {pos}: {line[:300]!r}")
            try:
                datetime.datetime.strptime(m.group("ts").decode(), "%Y-%m-%d %H:%M:%S.%f")
            except ValueError:
                raise ParseError(f"bad timestamp at offset {pos}: {line[:80]!r}")
            length = int(m.group("len"))
            shown = int(m.group("shown")) if m.group("shown") is not None else length
            if m.group("shown") is not None and not shown < length:
                raise ParseError(f"shown={shown} present but not < len={length} at offset {pos}")
            src = _parse_endpoint(m.group("src").decode(), data, pos)
            dst = _parse_endpoint(m.group("dst").decode(), data, pos)
            pos = nl + 1
            is_hex = m.group("hex") is not None
            if is_hex:
                payload, pos = _parse_hexdump(data, pos, shown, start)
            else:
                if pos + shown + 1 > n:
                    raise ParseError(f"block at offset {start} needs {shown} payload bytes + '\\n', "
                                     f"only {n - pos} left")
                payload = data[pos:pos + shown]
                if data[pos + shown:pos + shown + 1] != b"\n":
                    raise ParseError(f"payload of block at offset {start} (len={length} shown="
                                     f"{shown}) is not followed by '\\n': "
                                     f"{_snippet(data, pos + shown)}")
                pos += shown + 1
        except ParseError:
            if partial:
                break
            raise
        blocks.append(Block(ts=m.group("ts").decode(), direction=m.group("dir").decode(),
                            pid=int(m.group("pid")), tid=int(m.group("tid")),
                            uid=int(m.group("uid")), comm=m.group("comm").decode(),
                            fd=int(m.group("fd")), src=src, dst=dst, length=length, shown=shown,
                            hex=is_hex, payload=payload, offset=start,
                            proto=(m.group("proto") or b"").decode(),
                            stream=int(m.group("stream") or 0),
                            partial=m.group("partial") is not None,
                            container=m.group("container") and m.group("container").decode()))
    return blocks


def select(blocks, pid=None, direction=None, fd=None, comm=None):
    return [b for b in blocks
            if (pid is None or b.pid == pid) and (direction is None or b.direction == direction)
            and (fd is None or b.fd == fd) and (comm is None or b.comm == comm)]


def stream(blocks, pid, direction, fd=None):
    """Concatenated payloads of one pid+direction(+fd), in output order. Fails on truncation."""
    sel = select(blocks, pid=pid, direction=direction, fd=fd)
    for b in sel:
        if b.truncated:
            raise AssertionError(f"block truncated (len={b.length} shown={b.shown}): {b.header()}")
    return b"".join(b.payload for b in sel)


def summarize(blocks, limit=40):
    """Human-readable list of block headers for failure messages."""
    lines = [b.header() + f"  payload[:60]={b.payload[:60]!r}" for b in blocks[:limit]]
    if len(blocks) > limit:
        lines.append(f"... {len(blocks) - limit} more")
    return "\n".join(lines) if lines else "(no blocks)"


def split_http(data):
    """(header bytes incl. the final CRLFCRLF, rest) of an HTTP/1 message."""
    i = data.find(b"\r\n\r\n")
    if i < 0:
        raise AssertionError(f"no end of HTTP headers in {data[:300]!r}")
    return data[:i + 4], data[i + 4:]


def header_value(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            return v.strip().decode()
    return None


def curl_request_headers(verbose_stderr):
    """The exact request head curl sent, rebuilt from `curl -v` ("> " lines)."""
    out = bytearray()
    for line in verbose_stderr.split(b"\n"):
        if line.startswith(b"> "):
            out += line[2:] + b"\n"
        elif line == b">":
            out += b"\n"
    return bytes(out)


def ep(port, host="127.0.0.1"):
    return f"{host}:{port}"


# ---------------------------------------------------------------------------------------------
# the audit output parser

AUDIT_RE = re.compile(
    rb"\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\] (?P<kind>[A-Za-z]+) "
    rb"pid=(?P<pid>\d+) tid=(?P<tid>\d+) uid=(?P<uid>\d+) comm=(?P<comm>\S+) "
    rb"(?:container=(?P<container>\S+) )?type=(?P<type>\S+) status=(?P<status>-?\d+|\?) duration_ns=(?P<dur>\d+|\?)"
    rb"(?P<attrs>(?: [a-z_]+=(?:\"(?:[^\"\\]|\\.)*\"|[^ \"]+))*?)"
    rb" len=(?P<len>\d+)(?: shown=(?P<shown>\d+))?(?P<hex> hex)?")
ATTR_RE = re.compile(rb" ([a-z_]+)=(\"(?:[^\"\\]|\\.)*\"|[^ \"]+)")


class AuditRecord:
    """One record of the shell and SQL modules' audit text output."""

    def __init__(self, m, text):
        self.kind = m.group("kind").decode()
        self.pid = int(m.group("pid"))
        self.tid = int(m.group("tid"))
        self.uid = int(m.group("uid"))
        self.comm = m.group("comm").decode()
        self.container = m.group("container") and m.group("container").decode()
        self.type = m.group("type").decode()
        s = m.group("status")
        self.status = None if s == b"?" else int(s)
        d = m.group("dur")
        self.duration_ns = None if d == b"?" else int(d)
        self.attrs = {}
        for k, v in ATTR_RE.findall(m.group("attrs")):
            self.attrs[k.decode()] = json.loads(v) if v.startswith(b'"') else v.decode()
        self.length = int(m.group("len"))
        self.shown = int(m.group("shown")) if m.group("shown") else self.length
        self.text = text

    def __repr__(self):
        return (f"<{self.kind} pid={self.pid} tid={self.tid} {self.type} status={self.status} "
                f"attrs={self.attrs} len={self.length} text={self.text[:80]!r}>")


def parse_audit(data):
    """Parses ecapture's audit text output (bash, zsh, mysqld, postgres) into AuditRecords;
    raises AssertionError on anything malformed."""
    out, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise AssertionError(f"header without newline at {pos}: {data[pos:pos + 200]!r}")
        m = AUDIT_RE.fullmatch(data[pos:nl])
        if not m:
            raise AssertionError(f"malformed audit header at {pos}: {data[pos:nl][:300]!r}")
        datetime.datetime.strptime(m.group("ts").decode(), "%Y-%m-%d %H:%M:%S.%f")
        if m.group("hex"):
            raise AssertionError(f"unexpected hex record at {pos}: {data[pos:nl]!r}")
        shown = int(m.group("shown")) if m.group("shown") else int(m.group("len"))
        start = nl + 1
        if data[start + shown:start + shown + 1] != b"\n":
            raise AssertionError(f"record at {pos}: {shown} text bytes not followed by newline")
        out.append(AuditRecord(m, data[start:start + shown]))
        pos = start + shown + 1
    return out


def describe_audit(records):
    return "\n".join(repr(r) for r in records) or "(no records)"


def listening_ports():
    """TCP ports in LISTEN state on this host (IPv4 and IPv6), from /proc."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[3] == "0A":
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def tcp_local_ports(pid, remote_port):
    """The set of local ports of `pid`'s IPv4 TCP sockets connected to remote_port (/proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    with open(f"/proc/{pid}/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            lport = int(cols[1].split(":")[1], 16)
            rport = int(cols[2].split(":")[1], 16)
            if cols[9] in inodes and rport == remote_port:
                ports.add(lport)
    return ports


# ---------------------------------------------------------------------------------------------
# bpftool


def bpf_ids(kind):
    """Set of ids from `bpftool -j <kind> list` (kind: "prog" or "link")."""
    res = subprocess.run(["bpftool", "-j", kind, "list"], capture_output=True, timeout=30)
    if res.returncode != 0:
        raise AssertionError(f"bpftool {kind} list failed: {res.stderr.decode(errors='replace')}")
    text = res.stdout.decode().strip()
    items = json.loads(text) if text else []
    return {int(x["id"]) for x in items}


def bpf_snapshot():
    return {"prog": bpf_ids("prog"), "link": bpf_ids("link")}


def owned_bpf_ids(pid):
    """{"prog": ids, "link": ids} of the BPF programs and links process `pid` holds open (its
    /proc/<pid>/fdinfo), with the programs behind its links, and "tcx": {link id: ifindex} of its
    packet-capture links. Other ecapture processes may run on this machine at the same time: leak
    checks compare these ids, never a system-wide snapshot."""
    owned = {"prog": set(), "link": set(), "tcx": {}}
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:  # closed meanwhile
            continue
        if "link_id" in fields:
            owned["link"].add(int(fields["link_id"]))
            if fields.get("link_type", "").strip() == "tcx":
                owned["tcx"][int(fields["link_id"])] = int(fields["ifindex"])
        if "prog_id" in fields:
            owned["prog"].add(int(fields["prog_id"]))
    return owned


def assert_bpf_released(testcase, owned, timeout=10.0):
    """Fails unless every program and link in `owned` (owned_bpf_ids of an ecapture that has
    exited) is gone from the kernel within `timeout`."""
    def left():
        now = bpf_snapshot()
        return {"prog": owned["prog"] & now["prog"], "link": owned["link"] & now["link"]}
    wait_until(lambda: not any(left().values()), timeout)
    remaining = left()
    testcase.assertEqual(remaining, {"prog": set(), "link": set()},
                         f"BPF programs/links of the exited ecapture still loaded (owned: {owned})")


# ---------------------------------------------------------------------------------------------
# a base class for tests that need root and the binary


class E2ETestCase(unittest.TestCase):
    def setUp(self):
        reason = skip_reason()
        if reason:
            self.skipTest(reason)
        self.procs = Procs()
        self.addCleanup(self.procs.stop_all)
        self.tmp = make_tmpdir(self)

    def run_ecapture(self, args, **kw):
        return ecapture(self, self.tmp, args, procs=self.procs, **kw)

    @classmethod
    def start_class_nginx(cls, prefix, **nginx_kw):
        """For setUpClass: skips without root or BTF; sets cls.cls_procs, cls.cls_tmp (removed
        at the end unless kept), a certificate (cls.cert, cls.key) and an nginx serving with it
        (cls.nginx, cls.port), all stopped or removed after the class."""
        reason = skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix=prefix)
        if not KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = make_cert(cls.cls_tmp)
        cls.nginx = Nginx(cls.cls_tmp, cls.cert, cls.key, **nginx_kw).start(cls.cls_procs)
        cls.port = cls.nginx.port


def tls_decode_as(pcap):
    """tshark arguments that decode every TCP port of `pcap` as TLS: a random port may belong to
    another protocol in Wireshark's port table (44818 is EtherNet/IP) and hide the TLS."""
    r = subprocess.run(["tshark", "-n", "-r", pcap, "-T", "fields", "-e", "tcp.srcport",
                        "-e", "tcp.dstport"], capture_output=True, timeout=60)
    ports = {p for line in r.stdout.decode().split() for p in line.split(",") if p.isdigit()}
    args = []
    for p in sorted(ports):
        args += ["-d", f"tcp.port=={p},tls"]
    return args
