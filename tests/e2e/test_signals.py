"""SIGINT / SIGTERM: exit 0 within 1 s, and every BPF program and link ecapture created is gone."""
import re
import signal

import helpers

STOP_LIMIT = 1.0


class Signals(helpers.E2ETestCase):
    def check_signal(self, sig):
        with self.run_ecapture(["tls"], stop_signal=sig, expect_rc=None) as run:
            # What this ecapture holds (other ecapture processes may run on this machine).
            owned = helpers.owned_bpf_ids(run.pid)
        self.assertTrue(owned["prog"] and owned["link"],
                        f"ecapture held no BPF program/link fd while running: {owned}")
        self.assertEqual(run.returncode, 0, f"exit status after {sig.name}\n{run.describe()}")
        self.assertIsNotNone(run.stop_seconds, f"{sig.name}: no exit within 10 s, killed\n"
                                               f"{run.describe()}")
        self.assertLessEqual(run.stop_seconds, STOP_LIMIT,
                             f"{sig.name}: exit took {run.stop_seconds:.3f} s\n{run.describe()}")
        helpers.assert_bpf_released(self, owned, timeout=2.0)
        self.assertRegex(run.stderr_text(), re.compile(r"summary: events=\d+ bytes=\d+ lost=\d+"),
                         f"no summary line on stderr after {sig.name}")
        return owned

    def test_sigint(self):
        self.check_signal(signal.SIGINT)

    def test_sigterm(self):
        self.check_signal(signal.SIGTERM)
