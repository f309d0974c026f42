"""SIGINT / SIGTERM: exit 0 within 1 s, and every BPF program and link ecapture created is gone."""
import re
import signal

import helpers

STOP_LIMIT = 1.0


class Signals(helpers.E2ETestCase):
    def check_signal(self, sig):
        before = helpers.bpf_snapshot()
        with self.run_ecapture(["tls"], stop_signal=sig, expect_rc=None) as run:
            during = helpers.bpf_snapshot()
        new_progs = during["prog"] - before["prog"]
        new_links = during["link"] - before["link"]
        after = helpers.bpf_snapshot()

        self.assertTrue(new_progs, f"no new BPF programs while ecapture ran (before "
                                   f"{sorted(before['prog'])}, during {sorted(during['prog'])})")
        self.assertEqual(run.returncode, 0, f"exit status after {sig.name}\n{run.describe()}")
        self.assertIsNotNone(run.stop_seconds, f"{sig.name}: no exit within 10 s, killed\n"
                                               f"{run.describe()}")
        self.assertLessEqual(run.stop_seconds, STOP_LIMIT,
                             f"{sig.name}: exit took {run.stop_seconds:.3f} s\n{run.describe()}")
        self.assertEqual(sorted(new_progs & after["prog"]), [],
                         "programs loaded by ecapture still present after exit")
        self.assertEqual(sorted(new_links & after["link"]), [],
                         "links created by ecapture still present after exit")
        self.assertRegex(run.stderr_text(), re.compile(r"summary: events=\d+ bytes=\d+ lost=\d+"),
                         f"no summary line on stderr after {sig.name}")
        return new_progs, new_links

    def test_sigint(self):
        self.check_signal(signal.SIGINT)

    def test_sigterm(self):
        self.check_signal(signal.SIGTERM)
