"""Bad input: one `ecapture: ` line on stderr, non-zero exit, no crash, the culprit named; files
that ecapture writes to are never truncated."""
import os
import signal
import subprocess
import time

import helpers

EXIT_TIMEOUT = 10.0
CRASH_MARKERS = ("terminate called", "terminate", "Traceback", "Aborted", "Segmentation fault",
                 "core dumped", "what():")


class BadInput(helpers.E2ETestCase):
    def run_bad(self, args):
        """Runs ecapture with args; returns (rc, stderr text, seconds). Kills it (by pid) and fails
        if it is still running after EXIT_TIMEOUT."""
        argv = [helpers.BINARY] + args
        t0 = time.monotonic()
        p = self.procs.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            self.fail(f"{' '.join(argv)}: still running after {EXIT_TIMEOUT} s; stderr:\n"
                      f"{err.decode(errors='replace')[-3000:]}")
        return p.returncode, err.decode(errors="replace"), time.monotonic() - t0

    def assert_one_error(self, args, *must_mention):
        rc, err, secs = self.run_bad(args)
        cmd = "ecapture " + " ".join(args)
        self.assertGreater(rc, 0, f"{cmd}: exit status {rc} (expected > 0; < 0 is a signal); "
                                  f"stderr:\n{err}")
        for marker in CRASH_MARKERS:
            self.assertNotIn(marker, err, f"{cmd}: crash marker {marker!r} on stderr:\n{err}")
        lines = err.rstrip("\n").split("\n")
        self.assertEqual(len(lines), 1, f"{cmd}: expected exactly one stderr line, got "
                                        f"{len(lines)}:\n{err}")
        self.assertTrue(err.endswith("\n"), f"{cmd}: stderr line not newline-terminated: {err!r}")
        line = lines[0]
        self.assertTrue(line.startswith("ecapture: "), f"{cmd}: stderr line {line!r}")
        for word in must_mention:
            if isinstance(word, tuple):
                self.assertTrue(any(w in line for w in word),
                                f"{cmd}: message should mention one of {word}: {line!r}")
            else:
                self.assertIn(word, line, f"{cmd}: message should mention {word!r}: {line!r}")
        return line

    def test_unknown_subcommand(self):
        self.assert_one_error(["nosuchcmd"], "nosuchcmd")

    def test_unknown_flag(self):
        self.assert_one_error(["tls", "--nosuchflag"], "--nosuchflag")

    def test_btf_mode_2_explains_btf_file(self):
        self.assert_one_error(["tls", "-b", "2"], "--btf-file")

    def test_bad_model(self):
        self.assert_one_error(["tls", "-m", "bogus"], "bogus", ("-m", "--model"), "text",
                              ("keylog", "key"), "pcap")

    def test_libssl_missing(self):
        self.assert_one_error(["tls", "--libssl", "/nonexistent"], "/nonexistent")

    def test_libssl_not_elf(self):
        path = os.path.join(self.tmp, "not-a-library.so")
        with open(path, "w") as f:
            f.write("this is a text file, not an ELF shared object\n")
        self.assert_one_error(["tls", "--libssl", path], path)

    def test_libssl_without_ssl_symbols(self):
        self.assert_one_error(["tls", "--libssl", "/bin/ls"], "/bin/ls")

    OLD = b"OLD CONTENT 7f3a9c -- must survive\n"

    def existing_file(self):
        path = os.path.join(self.tmp, "existing.log")
        with open(path, "wb") as f:
            f.write(self.OLD)
        return path

    def assert_not_truncated(self, path, context):
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(self.OLD),
                        f"{context}: existing file was truncated/overwritten; now starts with "
                        f"{data[:200]!r}")

    def test_existing_logfile_not_truncated_on_error(self):
        path = self.existing_file()
        self.assert_one_error(["tls", "-l", path, "--libssl", "/nonexistent"], "/nonexistent")
        self.assert_not_truncated(path, "ecapture tls -l FILE --libssl /nonexistent")

    def test_existing_logfile_not_truncated_on_run(self):
        """ecapture either appends its logs to the file and runs, or refuses the file with one
        `ecapture: ` line; in no case is the old content lost."""
        path = self.existing_file()
        argv = [helpers.BINARY, "tls", "-l", path]
        err_path = os.path.join(self.tmp, "run.stderr")
        with open(err_path, "wb") as err, open(os.devnull, "wb") as out:
            p = self.procs.popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)

        def started():
            for f in (path, err_path):
                with open(f, "rb") as fh:
                    if helpers.READY_FRAGMENT in fh.read():
                        return True
            return p.poll() is not None

        helpers.wait_until(started, helpers.READY_TIMEOUT)
        self.assert_not_truncated(path, "while running `ecapture tls -l FILE`")
        if p.poll() is None:
            os.kill(p.pid, signal.SIGINT)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                self.fail("ecapture tls -l FILE: no exit within 10 s of SIGINT")
            with open(err_path, "rb") as f:
                err = f.read().decode(errors="replace")
            with open(path, "rb") as f:
                log = f.read().decode(errors="replace")
            self.assertEqual(rc, 0, f"exit after SIGINT; stderr:\n{err}\nlog:\n{log[-3000:]}")
            self.assertIn(helpers.READY_FRAGMENT.decode(), log + err,
                          "neither the log file nor stderr says `capture started`")
        else:
            with open(err_path, "rb") as f:
                err = f.read().decode(errors="replace")
            # It exited before `capture started`: only acceptable as a clean refusal of the file.
            self.assertGreater(p.returncode, 0, f"exited {p.returncode} before capture started: "
                                                f"{err}")
            self.assertTrue(err.startswith("ecapture: ") and err.count("\n") == 1,
                            f"`ecapture tls -l FILE` exited {p.returncode} before `capture "
                            f"started` and not with a single `ecapture: ` line refusing the file; "
                            f"stderr:\n{err}")
        self.assert_not_truncated(path, "after `ecapture tls -l FILE`")
