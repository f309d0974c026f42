"""`ecapture bash` and `ecapture zsh`: interactive shells driven through a pseudo-terminal, one
line at a time (each line is read by the line editor on its own, as when a person types), must be
reported command by command, in order, with exact texts, statuses and the shell's pid; `-e N`
keeps only status N; non-interactive shells produce nothing; bad input gives one clear line."""
import json
import os
import pty
import select
import signal
import subprocess
import time

import helpers

PS1 = b"ECAPPS1> "
PS2 = b"ECAPPS2> "
BASH = "/bin/bash"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
ZSH = "/bin/zsh"

parse_audit = helpers.parse_audit


_SHELL_PROGRAM_NAMES = ("probe_bash_readline_enter", "probe_bash_line_exit",
                        "probe_zsh_zleentry_enter", "probe_zsh_zleentry_exit", "tp_shell_exec",
                        "tp_shell_exit")
# bpftool shows the full name from BTF, or the kernel's 15-character one.
SHELL_PROGRAMS = set(_SHELL_PROGRAM_NAMES) | {n[:15] for n in _SHELL_PROGRAM_NAMES}


def bpf_programs():
    res = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, timeout=30,
                         check=True)
    text = res.stdout.decode().strip()
    return json.loads(text) if text else []


def describe(cmds):
    return "\n".join(f"  pid={c.pid} status={c.status} attrs={c.attrs} text={c.text!r}"
                     for c in cmds) or "  (none)"


def running_sleep(shell_pid):
    """True once the shell runs `sleep` (it has read and started the command)."""
    for child in helpers.children_of(shell_pid):
        try:
            if helpers.read_comm(child) == "sleep":
                return True
        except OSError:
            pass
    return False


class PtyShell:
    """An interactive shell on a pseudo-terminal. send() types one line and waits for the next
    prompt, so the line editor reads each line on its own."""

    def __init__(self, testcase, argv, env=None, prompt=PS1):
        env = dict(os.environ, PS1=PS1.decode(), PS2=PS2.decode(), TERM="dumb",
                   HISTFILE="/dev/null", HOME=testcase.tmp) | (env or {})
        pid, fd = pty.fork()
        if pid == 0:  # child: become the shell
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.argv = argv
        self.buf = bytearray()
        self.exit_status = None
        testcase.addCleanup(self.close)
        self.wait_for(prompt)

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the shell is gone
                return False
            self.buf += chunk
            return bool(chunk)
        return True

    def wait_for(self, marker, timeout=15.0):
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if time.monotonic() > deadline or not self._read(0.1):
                raise AssertionError(f"{self.argv}: no {marker!r} within {timeout} s; "
                                     f"terminal so far: {bytes(self.buf)[-2000:]!r}")

    def send(self, line, expect=PS1):
        self.buf.clear()
        os.write(self.fd, line + b"\n")
        if expect is not None:
            self.wait_for(expect)

    def wait_exit(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.exit_status = status
                return status
        raise AssertionError(f"{self.argv} (pid {self.pid}) did not exit within {timeout} s; "
                             f"terminal: {bytes(self.buf)[-2000:]!r}")

    def close(self):
        if self.exit_status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.exit_status = -1
        try:
            os.close(self.fd)
        except OSError:
            pass


class ShellCase:
    """Tests both shells share; mixed into a helpers.E2ETestCase per shell."""
    shell = None     # "bash" | "zsh"
    binary = None
    argv = None
    kind = None

    def setUp(self):
        super().setUp()
        if not os.access(self.binary, os.X_OK):
            self.fail(f"{self.binary} missing (scripts/setup.sh installs it)")

    def start_capture(self, *extra):
        return self.run_ecapture([self.shell, f"--{self.shell}", self.binary, *extra])

    def commands(self, run):
        run.settle(quiet=0.7, timeout=5)
        return parse_audit(run.stdout_bytes())

    def background_script(self, marker):
        """A non-interactive shell running a few commands that mention `marker`."""
        script = (f"for i in 1 2 3; do echo {marker}_$i >/dev/null; done; (exit 3); "
                  f"sleep 0.3; echo {marker} >/dev/null")
        return self.procs.popen([self.binary, "-c", script], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def typed_sequence(self, tok):
        """(line, expected prompt) pairs and the commands they make: (text, status, end)."""
        long_arg = helpers.rand_printable(400).decode()
        lines = [
            (f"echo first_{tok}", PS1),
            ("(exit 3)", PS1),
            ("for i in 1 2; do", PS2),
            (f"echo loop_{tok}_$i; done", PS1),
            (f"if true; then echo in_{tok}; (exit 4); fi", PS1),
            ("", PS1),  # an empty line runs nothing and makes no record
            (f"echo long_{tok}_{long_arg} >/dev/null", PS1),
        ]
        expected = [
            (f"echo first_{tok}", 0, "prompt"),
            ("(exit 3)", 3, "prompt"),
            (f"for i in 1 2; do\necho loop_{tok}_$i; done", 0, "prompt"),
            (f"if true; then echo in_{tok}; (exit 4); fi", 4, "prompt"),
            (f"echo long_{tok}_{long_arg} >/dev/null", 0, "prompt"),
        ]
        return lines, expected

    def check_sequence(self, errnumber=None):
        tok = helpers.rand_token()
        extra = ["-e", str(errnumber)] if errnumber is not None else []
        with self.start_capture(*extra) as run:
            script = self.background_script(f"noninteractive_{tok}")
            sh = PtyShell(self, self.argv)
            lines, expected = self.typed_sequence(tok)
            for line, prompt in lines:
                sh.send(line.encode(), prompt)
            # exec replaces the shell: no prompt follows and no status can be known.
            sh.send(b"exec /bin/true", expect=None)
            status = sh.wait_exit()
            self.assertTrue(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
                            f"exec /bin/true: wait status {status:#x}")
            script.wait(timeout=15)
            cmds = self.commands(run)
        expected.append(("exec /bin/true", None, "exec"))
        if errnumber is not None:
            expected = [e for e in expected if e[1] == errnumber]
        mine = [c for c in cmds if c.pid == sh.pid]
        got = [(c.text.decode(), c.status, c.attrs.get("end")) for c in mine]
        self.assertEqual(got, expected, f"commands of shell pid {sh.pid}:\n{describe(cmds)}\n"
                                        f"{run.describe()}")
        for c in mine:
            self.assertEqual((c.kind, c.tid, c.uid, c.comm, c.attrs.get("incomplete")),
                             (self.kind, sh.pid, os.getuid(), self.shell, None), describe([c]))
            if c.attrs["end"] == "prompt":
                self.assertIsNotNone(c.duration_ns, describe([c]))
        others = [c for c in cmds if c.pid != sh.pid]
        self.assertEqual(others, [], f"records of other processes (the non-interactive "
                                     f"{self.shell} -c is pid {script.pid}):\n{describe(others)}")
        self.assertNotIn(f"noninteractive_{tok}".encode(), run.stdout_bytes())
        # ecapture has exited: none of the module's programs may remain loaded.
        left = [p["name"] for p in bpf_programs() if p.get("name") in SHELL_PROGRAMS]
        self.assertEqual(left, [], "BPF programs left behind after exit")

    def test_sequence(self):
        self.check_sequence()

    def test_errnumber_3_shows_only_the_failing_command(self):
        self.check_sequence(errnumber=3)


class BashTest(ShellCase, helpers.E2ETestCase):
    shell, binary, kind = "bash", BASH, "BASH"
    argv = [BASH, "--norc", "--noprofile", "-i"]

    def test_shell_waiting_at_its_prompt_before_capture_starts(self):
        """The line being typed when capture starts is the first one reported."""
        tok = helpers.rand_token()
        sh = PtyShell(self, self.argv)  # now blocked in readline
        with self.start_capture() as run:
            sh.send(f"echo early_{tok}".encode())
            sh.send(b"false")
            cmds = [c for c in self.commands(run) if c.pid == sh.pid]
        self.assertEqual([(c.text, c.status) for c in cmds],
                         [(f"echo early_{tok}".encode(), 0), (b"false", 1)], describe(cmds))

    def test_input_read_by_a_command_is_not_a_command(self):
        """`read -e` uses readline too: what it reads is data, not a command; and a command that
        runs when capture stops is still reported (no status)."""
        tok = helpers.rand_token()
        with self.start_capture() as run:
            sh = PtyShell(self, self.argv)
            sh.send(b"read -e -p 'ECAPREAD> ' v", expect=b"ECAPREAD> ")
            sh.send(f"data_{tok}".encode())
            sh.send(b'test "$v" = data_' + tok.encode())
            sh.send(f"sleep 30 # running_{tok}".encode(), expect=None)
            self.assertTrue(helpers.wait_until(lambda: running_sleep(sh.pid), 10),
                            "the shell did not start `sleep 30`")
            cmds = [c for c in self.commands(run) if c.pid == sh.pid]
            self.assertEqual([(c.text.decode(), c.status) for c in cmds],
                             [("read -e -p 'ECAPREAD> ' v", 0), (f'test "$v" = data_{tok}', 0)],
                             describe(cmds))
        cmds = [c for c in parse_audit(run.stdout_bytes()) if c.pid == sh.pid]
        self.assertEqual([(c.text.decode(), c.status, c.attrs.get("end")) for c in cmds[2:]],
                         [(f"sleep 30 # running_{tok}", None, "shutdown")], describe(cmds))

    def test_prompt_command_does_not_change_statuses(self):
        """PROMPT_COMMAND and command substitutions in PS1 run between a command and the next
        prompt; bash keeps $? for them, and so must the reported status."""
        with self.start_capture() as run:
            sh = PtyShell(self, self.argv, env={"PROMPT_COMMAND": "(exit 9)",
                                                "PS1": "$(exit 8)" + PS1.decode()})
            sh.send(b"(exit 3)")
            sh.send(b"true")
            cmds = [c for c in self.commands(run) if c.pid == sh.pid]
        self.assertEqual([(c.text, c.status) for c in cmds], [(b"(exit 3)", 3), (b"true", 0)],
                         describe(cmds))

    def test_bash_with_shared_readline(self):
        """A bash that links libreadline.so (tests/fixtures/shell/fake_bash.c): found through
        DT_NEEDED, hooked in the library, globals read from the executable; another program
        using the same libreadline (the Debian python REPL) is not reported."""
        fake = os.path.join(self.tmp, "fake_bash")
        subprocess.run(["cc", "-rdynamic", "-o", fake,
                        os.path.join(FIXTURES, "shell", "fake_bash.c"), "-lreadline"],
                       check=True, capture_output=True, timeout=60)
        tok = helpers.rand_token()
        with self.run_ecapture(["bash", "--bash", fake]) as run:
            self.assertRegex(run.stderr_text(), r"\(readline: \S*/libreadline\.so\.8\)")
            py = PtyShell(self, [helpers.DEBIAN_PYTHON, "-q", "-i"], prompt=b">>> ")
            py.send(f"x = 'python_{tok}'".encode(), b">>> ")
            sh = PtyShell(self, [fake], prompt=b"FAKEPS1> ")
            sh.send(b"status 3", b"FAKEPS1> ")
            sh.send(b"cont", b"FAKEPS2> ")
            sh.send(f"more_{tok}".encode(), b"FAKEPS1> ")
            sh.send(b"input", b"FAKEINPUT> ")
            sh.send(f"data_{tok}".encode(), b"FAKEPS1> ")
            sh.send(b"status 5", b"FAKEPS1> ")
            os.write(sh.fd, b"\x04")  # end of input: readline returns NULL, the program exits
            sh.wait_exit()
            cmds = self.commands(run)
        self.assertEqual([(c.pid, c.text.decode(), c.status, c.attrs.get("end")) for c in cmds],
                         [(sh.pid, "status 3", 3, "prompt"), (sh.pid, f"cont\nmore_{tok}", 0,
                                                               "prompt"),
                          (sh.pid, "input", 0, "prompt"), (sh.pid, "status 5", 5, "prompt")],
                         describe(cmds))
        self.assertNotIn(tok.encode() + b"'", run.stdout_bytes())

    def test_commands_after_exec_of_a_new_shell(self):
        """`exec bash` replaces the image in the same process: the exec line is closed without a
        status, and the new bash's commands are reported under the same pid."""
        with self.start_capture() as run:
            sh = PtyShell(self, self.argv)
            sh.send(b"exec " + " ".join(self.argv).encode())
            sh.send(b"(exit 6)")
            sh.send(b"exec /bin/true", expect=None)
            sh.wait_exit()
            cmds = self.commands(run)
        self.assertEqual([(c.pid, c.text.decode(), c.status, c.attrs.get("end")) for c in cmds],
                         [(sh.pid, "exec " + " ".join(self.argv), None, "exec"),
                          (sh.pid, "(exit 6)", 6, "prompt"),
                          (sh.pid, "exec /bin/true", None, "exec")], describe(cmds))

    def test_exit_reports_the_exit_code(self):
        with self.start_capture() as run:
            sh = PtyShell(self, self.argv)
            sh.send(b"exit 7", expect=None)
            status = sh.wait_exit()
            self.assertEqual(os.WEXITSTATUS(status), 7)
            cmds = [c for c in self.commands(run) if c.pid == sh.pid]
        self.assertEqual([(c.text, c.status, c.attrs.get("end")) for c in cmds],
                         [(b"exit 7", 7, "exit")], describe(cmds))


class ZshTest(ShellCase, helpers.E2ETestCase):
    shell, binary, kind = "zsh", ZSH, "ZSH"
    argv = [ZSH, "-f", "-i"]

    def test_non_ascii_text_is_unmetafied(self):
        # zsh "metafies" bytes 0x83-0xa1 (here the 0xa0 of "à") inside its strings.
        with self.start_capture() as run:
            sh = PtyShell(self, self.argv)
            sh.send("echo à_é_ü".encode())
            cmds = [c for c in self.commands(run) if c.pid == sh.pid]
        self.assertEqual([(c.text, c.status) for c in cmds],
                         [("echo à_é_ü".encode(), 0)], describe(cmds))


class ShellBadInput(helpers.E2ETestCase):
    def assert_one_error(self, args, *must_mention):
        argv = [helpers.BINARY] + args
        p = self.procs.popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail(f"{argv}: still running after 10 s")
        err = err.decode(errors="replace")
        cmd = " ".join(args)
        self.assertGreater(p.returncode, 0, f"{cmd}: exit {p.returncode}; stderr:\n{err}")
        self.assertEqual(out, b"", f"{cmd}: stdout {out!r}")
        lines = err.rstrip("\n").split("\n")
        self.assertEqual(len(lines), 1, f"{cmd}: expected one stderr line:\n{err}")
        self.assertTrue(lines[0].startswith("ecapture: "), f"{cmd}: {lines[0]!r}")
        for word in must_mention:
            self.assertIn(word, lines[0], f"{cmd}: should mention {word!r}: {lines[0]!r}")
        return lines[0]

    def test_bash_missing(self):
        self.assert_one_error(["bash", "--bash", "/nonexistent"], "/nonexistent", "no such file",
                              "--bash")

    def test_bash_not_elf(self):
        self.assert_one_error(["bash", "--bash", "/etc/passwd"], "/etc/passwd", "--bash")

    def test_bash_without_readline(self):
        for path in ("/bin/dash", "/bin/ls"):
            self.assert_one_error(["bash", "--bash", path], path, "readline", "--readlineso")

    def test_readlineso_without_readline(self):
        self.assert_one_error(["bash", "--readlineso", "/bin/ls"], "/bin/ls", "readline")

    def test_errnumber_out_of_range(self):
        self.assert_one_error(["bash", "-e", "300"], "300", "--errnumber")

    def test_zsh_missing(self):
        self.assert_one_error(["zsh", "--zsh", "/nonexistent"], "/nonexistent", "--zsh")

    def test_zsh_not_zsh(self):
        self.assert_one_error(["zsh", "--zsh", BASH], BASH, "zleentry")
