"""Hostile neighbours (issue 17): a process that maps a truncated, a corrupted or a huge sparse
"libssl.so.3", and a Go program whose pclntab was mutated. `ecapture tls --pid P` and
`ecapture gotls -e BIN` must refuse that target with one `ecapture: ...` line and a non-zero exit,
quickly and in bounded memory: never crash, hang or allocate without bound.
"""
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest

import helpers

# What a refusal may cost: ecapture's own start-up is ~30 MiB RSS here; a parser that read a
# 4 GiB file into memory would blow far past this.
MAX_RSS_KIB = 160 * 1024
MAX_SECONDS = 20.0
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "gotls")

# Maps the file read-only and executable, the way ld.so maps a library's code, then waits.
MAPPER = r"""
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
m = mmap.mmap(fd, min(size, 1 << 32), mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_EXEC)
print("mapped", flush=True)
sys.stdin.read()
"""


def run_measured(argv, timeout, tmp):
    """Runs argv to completion; returns (returncode, stdout, stderr, seconds, peak RSS KiB)."""
    out_path, err_path = os.path.join(tmp, "measured.out"), os.path.join(tmp, "measured.err")
    t0 = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    # Peak memory of the program itself: VmHWM of its own (post-exec) address space, sampled while
    # it runs. (wait4's ru_maxrss would also count the test runner's memory, which the forked
    # child carried until its exec.)
    hwm = 0
    while True:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        if time.monotonic() - t0 > timeout:
            os.kill(p.pid, 9)
            os.wait4(p.pid, 0)
            raise AssertionError(f"{argv}: still running after {timeout} s (hang?): "
                                 f"{open(err_path, 'rb').read()[-2000:]!r}")
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    seconds = time.monotonic() - t0
    with open(out_path, "rb") as f:
        out = f.read()
    with open(err_path, "rb") as f:
        err = f.read().decode(errors="replace")
    return p.returncode, out, err, seconds, hwm


class Hostile(helpers.E2ETestCase):
    def assert_refused(self, argv, must_name):
        rc, out, err, seconds, rss = run_measured([helpers.BINARY] + argv, MAX_SECONDS + 10,
                                                  self.tmp)
        lines = [line for line in err.splitlines() if line.strip()]
        detail = f"argv={argv} rc={rc} {seconds:.1f}s maxrss={rss} KiB\nstderr: {err[-3000:]}"
        self.assertNotIn(rc, (0,), detail)
        self.assertGreater(rc, 0, "killed by a signal (crash?)\n" + detail)
        self.assertEqual(len(lines), 1, "exactly one line\n" + detail)
        self.assertTrue(lines[0].startswith("ecapture: "), detail)
        self.assertIn(must_name, lines[0], detail)
        self.assertEqual(out, b"", detail)
        self.assertLess(seconds, MAX_SECONDS, detail)
        self.assertLess(rss, MAX_RSS_KIB, detail)
        return lines[0]

    def mapped_by_a_process(self, path):
        p = self.procs.popen([helpers.DEBIAN_PYTHON, "-c", MAPPER, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline()
        self.assertEqual(line, b"mapped\n", p.stderr.read().decode(errors="replace")
                         if p.poll() is not None else "")
        with open(f"/proc/{p.pid}/maps") as f:
            self.assertIn(path, f.read())
        return p

    def fake_libssl(self, data, sparse_size=None):
        d = os.path.join(self.tmp, helpers.rand_token(6))
        os.makedirs(d)
        path = os.path.join(d, "libssl.so.3")
        with open(path, "wb") as f:
            f.write(data)
            if sparse_size:
                f.truncate(sparse_size)
        return path

    def real_libssl(self):
        with open(helpers.SYSTEM_LIBSSL, "rb") as f:
            return f.read()

    def test_01_truncated_libssl(self):
        path = self.fake_libssl(self.real_libssl()[:6000])
        p = self.mapped_by_a_process(path)
        self.assert_refused(["tls", "--pid", str(p.pid)], path)

    def test_02_corrupted_libssl(self):
        data = bytearray(self.real_libssl())
        # Section headers pointing past the end and a program header table full of garbage.
        e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
        struct.pack_into("<Q", data, 0x28, e_shoff + (1 << 40))
        for i in range(0x40, 0x40 + 56 * 4):
            data[i] = (i * 151) & 0xFF
        path = self.fake_libssl(bytes(data))
        p = self.mapped_by_a_process(path)
        self.assert_refused(["tls", "--pid", str(p.pid)], path)

    def test_03_huge_sparse_libssl(self):
        """A real libssl at the start of a 4 GiB sparse file: a valid ELF with nothing to scan
        past its sections. Only its first 4 GiB are mapped (the whole file)."""
        path = self.fake_libssl(self.real_libssl(), sparse_size=4 << 30)
        self.assertLess(os.stat(path).st_blocks * 512, 64 << 20, "the file must be sparse")
        p = self.mapped_by_a_process(path)
        self.assert_refused(["tls", "--pid", str(p.pid)], path)

    def test_04_go_binary_with_mutated_pclntab(self):
        if shutil.which("go") is None:
            self.skipTest("go not installed")
        build = tempfile.mkdtemp(prefix="ecap-hostile-go-")
        self.addCleanup(shutil.rmtree, build, True)
        binary = os.path.join(build, "stripped")
        env = dict(os.environ, GOCACHE="/tmp/ecap-e2e-gocache", HOME=build, GO111MODULE="off")
        # Stripped: functions can only be found through the pclntab.
        r = subprocess.run(["go", "build", "-ldflags=-s -w", "-o", binary,
                            os.path.join(FIXTURES, "main.go")], env=env, capture_output=True,
                           timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        dump = os.path.join(build, "pcln")
        subprocess.run(["objcopy", "--dump-section", f".gopclntab={dump}", binary],
                       check=True, capture_output=True, timeout=60)
        tab_size = os.path.getsize(dump)
        r = subprocess.run(["objdump", "-h", binary], check=True, capture_output=True, timeout=60)
        offset = None
        for line in r.stdout.decode().splitlines():
            cols = line.split()
            if len(cols) >= 6 and cols[1] == ".gopclntab":
                offset = int(cols[5], 16)
        self.assertIsNotNone(offset, r.stdout.decode())
        with open(binary, "rb") as f:
            data = bytearray(f.read())
        tab = data[offset:offset + tab_size]
        self.assertIn(bytes(tab[:4]), (b"\xf0\xff\xff\xff", b"\xf1\xff\xff\xff"),
                      "a Go 1.18+ pclntab expected")
        # Keep the header valid; make every function-table offset point far outside the table.
        ptr = 8
        functab = struct.unpack_from("<Q", tab, 8 + 7 * ptr)[0]
        nfunc = struct.unpack_from("<Q", tab, 8)[0]
        for i in range(nfunc + 1):
            at = offset + functab + 8 * i
            if at + 8 <= offset + tab_size:
                struct.pack_into("<II", data, at, 0xFFFFFF00 - i, 0x7FFFFFF0)
        mutated = os.path.join(build, "mutated")
        with open(mutated, "wb") as f:
            f.write(data)
        os.chmod(mutated, 0o755)
        self.assert_refused(["gotls", "-e", mutated], mutated)


if __name__ == "__main__":
    unittest.main()
