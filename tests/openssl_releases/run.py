#!/usr/bin/env python3
"""Keys from real OpenSSL builds: `ecapture tls -m keylog` and `-m pcap` on each given build.

    python3 tests/openssl_releases/run.py --binary /abs/build/ecapture --prefix DIR [--prefix DIR]

Each DIR is an installed OpenSSL (DIR/lib/libssl.so.*, DIR/bin/openssl), built by whoever runs
this; nothing here fetches or builds sources, and `make test` does not run it. For each build and
each of TLS 1.2 and 1.3 (1.2 only before 1.1.1), that build's `openssl s_client` sends a request
line to its `openssl s_server` on 127.0.0.1, which answers with random bytes:
  - keylog, with --pid of the client, then of the server: tshark decrypts an independent
    capture of lo with ecapture's key log alone;
  - pcap (all processes, `tcp port P`): tshark decrypts ecapture's pcapng (its Decryption
    Secrets Blocks) alone.
Both must show the exact request line and answer. Prints one table line per build and exits
non-zero when any run fails. Needs root, tshark, and the e2e helpers next door.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import helpers  # noqa: E402


class Case:
    """Just enough of unittest.TestCase for helpers.ecapture(): failures raise."""

    def fail(self, msg):
        raise AssertionError(msg)

    def assertTrue(self, v, msg=""):
        if not v:
            raise AssertionError(msg)


def library(prefix, stem):
    for d in ("lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"):
        found = sorted(glob.glob(os.path.join(prefix, d, stem + ".so.*")))
        if found:
            return found[0]
    raise FileNotFoundError(f"no {stem}.so.* under {prefix}/lib*")


class Build:
    def __init__(self, prefix):
        self.prefix = os.path.abspath(prefix)
        self.libssl = library(self.prefix, "libssl")
        self.openssl = os.path.join(self.prefix, "bin", "openssl")
        self.env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(self.libssl))
        out = subprocess.run([self.openssl, "version"], env=self.env, capture_output=True,
                             timeout=30, check=True).stdout.decode()
        self.version_text = out.strip()
        m = re.match(r"OpenSSL (\d+)\.(\d+)\.(\d+)", self.version_text)
        self.version = tuple(int(x) for x in m.groups())

    def tls_versions(self):
        return ["1.2", "1.3"] if self.version >= (1, 1, 1) else ["1.2"]


def sniffer(procs, path, port):
    err = open(path + ".err", "w+b")
    p = procs.popen(["tshark", "-n", "-i", "lo", "-f", f"tcp port {port}", "-w", path],
                    stdout=subprocess.DEVNULL, stderr=err)

    def started():
        err.seek(0)
        return b"Capturing on" in err.read()

    if not helpers.wait_until(started, 15):
        raise AssertionError("tshark did not start")

    def stop():
        time.sleep(0.3)
        p.send_signal(2)
        p.wait(timeout=15)
        err.close()
    return stop


def follow(pcap, keylog=None):
    """The decrypted TLS streams of `pcap` (tshark follow,tls,ascii), with `keylog` if given."""
    decode = helpers.tls_decode_as(pcap)
    extra = ["-o", f"tls.keylog_file:{keylog}"] if keylog else []
    out = []
    for idx in range(2):
        r = subprocess.run(["tshark", "-n", "-r", pcap, *decode, *extra, "-q", "-z",
                            f"follow,tls,ascii,{idx}"], capture_output=True, timeout=60)
        out.append(r.stdout)
    return b"\n".join(out)


def one_run(build, tls, side, mode, tmp):
    """One s_server/s_client exchange under ecapture; returns (ok, detail, ecapture stderr)."""
    procs = helpers.Procs()
    try:
        cert, key = helpers.make_cert(tmp)
        name = helpers.rand_token(10)
        body = helpers.rand_printable(300)
        port = helpers.free_port()
        accept = str(port) if build.version < (1, 1, 0) else f"127.0.0.1:{port}"
        # s_server's plain mode (not -WWW: its BIO_f_ssl path reads and writes through internal
        # functions, past every exported one): it prints what it receives and sends its stdin.
        server_out = os.path.join(tmp, "server.out")
        with open(server_out, "wb") as so:
            server = procs.popen([build.openssl, "s_server", "-accept", accept, "-cert", cert,
                                  "-key", key], env=build.env, stdin=subprocess.PIPE, stdout=so,
                                 stderr=subprocess.STDOUT)
        if not helpers.wait_until(lambda: port in helpers.listening_ports(), 15):
            return False, "s_server did not listen", ""
        # The client waits for a line, then execs s_client: its pid is known before ecapture.
        request = f"GET /{name} HTTP/1.0\r\n\r\n".encode()
        client = procs.popen(["/bin/sh", "-c", 'read go; exec "$@" < "$REQ"', "sh", build.openssl,
                              "s_client", "-connect", f"127.0.0.1:{port}", f"-tls1_{tls[-1]}",
                              "-quiet"],
                             env=dict(build.env, REQ=os.path.join(tmp, "request")),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        with open(os.path.join(tmp, "request"), "wb") as f:
            f.write(request)
        keys = os.path.join(tmp, "keys.log")
        pcap = os.path.join(tmp, "ecapture.pcapng")
        indep = os.path.join(tmp, "indep.pcapng")
        pid = client.pid if side == "client" else server.pid
        args = ["tls", "--libssl", build.libssl, "-m", mode, "-k", keys]
        if side != "any":
            args += ["--pid", str(pid)]
        if mode == "pcap":
            args += ["-i", "lo", "-w", pcap, "tcp", "port", str(port)]
        stop_sniffer = sniffer(procs, indep, port) if mode == "keylog" else None
        with helpers.ecapture(Case(), tmp, args, procs=procs) as run:
            client.stdin.write(b"go\n")
            client.stdin.flush()

            def server_got_request():
                with open(server_out, "rb") as f:
                    return request.split(b"\r\n")[0] in f.read()

            if not helpers.wait_until(server_got_request, 30):
                return False, "s_server did not receive the request", ""
            server.stdin.write(body + b"\n")
            server.stdin.flush()
            time.sleep(0.5)
            server.stdin.write(b"Q\n")  # s_server: end the connection and exit
            server.stdin.flush()
            out, err = client.communicate(timeout=60)
            helpers.wait_until(lambda: os.path.exists(keys) and os.path.getsize(keys) > 0, 5)
            time.sleep(1.0)  # pcap mode holds packets 0.5 s so that their secrets go first
        if stop_sniffer:
            stop_sniffer()
        stderr = run.stderr_text()
        if body not in out:
            return False, f"s_client did not get the file (rc {client.returncode}): {err[-300:]}", \
                stderr
        streams = follow(indep, keys) if mode == "keylog" else follow(pcap)
        got_req = request.split(b"\r\n")[0] in streams
        got_body = body in streams
        if not (got_req and got_body):
            with open(keys, "rb") as f:
                lines = f.read().decode(errors="replace")
            return False, f"tshark decrypted request={got_req} body={got_body}; keys:\n{lines}", \
                stderr
        return True, "", stderr
    finally:
        procs.stop_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", required=True)
    ap.add_argument("--prefix", action="append", required=True)
    ap.add_argument("-v", action="store_true", help="print ecapture's stderr of failed runs")
    args = ap.parse_args()
    reason = helpers.skip_reason()
    if reason:
        print(f"SKIPPED: {reason}")
        return 0
    helpers.BINARY = os.path.abspath(args.binary)
    failed = 0
    print("release | row | code check | TLS | keylog --pid client | keylog --pid server | pcap")
    for prefix in args.prefix:
        build = Build(prefix)
        for tls in build.tls_versions():
            cells = {}
            row, check = "?", "?"
            # pcap runs without --pid: with --pid of an s_client, ecapture 0.1 does not learn
            # the client's connection and writes no packets (its keys are found).
            for side, mode in (("client", "keylog"), ("server", "keylog"), ("any", "pcap")):
                if True:
                    for attempt in range(2):
                        with tempfile.TemporaryDirectory(prefix="ecap-ossl-") as tmp:
                            try:
                                ok, detail, stderr = one_run(build, tls, side, mode, tmp)
                            except AssertionError as e:
                                ok, detail, stderr = False, str(e)[:2000], ""
                        # Other programs on this host may take the free port between the check
                        # and s_server's bind; only an exchange that never happened is retried.
                        if ok or "s_client did not get" not in detail:
                            break
                    m = re.search(r"layout '([^']+)' \(([^)]*)\)", stderr)
                    if m:
                        row, check = m.group(1), m.group(2)
                    cells[(side, mode)] = "ok" if ok else "FAIL"
                    if not ok:
                        failed += 1
                        print(f"  {build.version_text} TLS {tls} {side} {mode}: {detail}")
                        if args.v:
                            print(stderr[-4000:])
            print(f"{build.version_text} | {row} | {check} | {tls} | "
                  f"{cells[('client', 'keylog')]} | {cells[('server', 'keylog')]} | "
                  f"{cells[('any', 'pcap')]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
