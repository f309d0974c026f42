#!/usr/bin/env python3
"""ecapture end-to-end tests.

    python3 tests/e2e/run.py --binary /abs/build/ecapture [-k pattern] [-v]

Needs root and /sys/kernel/btf/vmlinux; otherwise prints `SKIPPED: <reason>` for every test and
exits 0. Exits non-zero when any test fails. Standard library only.
Environment: ECAPTURE_E2E_KEEP=1 keeps the temp dirs (they are printed on failure).
"""
import argparse
import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import helpers  # noqa: E402

MODULES = ["test_bad_input", "test_signals", "test_tls_text", "test_tls_keys", "test_tls_pcap", "test_tls_boringssl", "test_api", "test_sql", "test_outputs", "test_shells", "test_gotls", "test_gnutls_nss", "test_gnutls_keys", "test_fleet", "test_web", "test_hostile", "test_faults", "test_hot_path", "test_hostwide", "test_cgroup", "test_hostwide_tlslib", "test_all"]


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class Result(unittest.TestResult):
    """Prints one line per test: PASS / FAIL / ERROR / SKIPPED, with its duration."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self._t0 = {}
        self.passed = []

    def _line(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def startTest(self, test):
        super().startTest(test)
        self._t0[test.id()] = time.monotonic()

    def _dt(self, test):
        t0 = self._t0.get(test.id())
        return f"{time.monotonic() - t0:6.1f}s" if t0 else "      "

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test)
        self._line(f"PASS    {self._dt(test)}  {test.id()}")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(f"FAIL    {self._dt(test)}  {test.id()}")

    def addError(self, test, err):
        super().addError(test, err)
        self._line(f"ERROR   {self._dt(test)}  {test.id()}")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(f"SKIPPED: {reason} [{test.id()}]")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._line(f"XFAIL   {self._dt(test)}  {test.id()}")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line(f"XPASS   {self._dt(test)}  {test.id()}")


def main():
    ap = argparse.ArgumentParser(description="ecapture end-to-end tests")
    ap.add_argument("--binary", required=True, help="absolute path of the ecapture binary")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only run tests whose id matches this substring/glob (repeatable)")
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    helpers.BINARY = binary
    os.environ["ECAPTURE_BINARY"] = binary

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else f"*{p}*" for p in args.patterns]
    suite = unittest.TestSuite(loader.loadTestsFromName(m) for m in MODULES)
    # A test class imported by another module (to share its fixtures) is found there again:
    # run each test once.
    seen = set()
    tests = [t for t in iter_tests(suite) if not (t.id() in seen or seen.add(t.id()))]
    suite = unittest.TestSuite(tests)
    if not tests:
        print(f"no test matches {args.patterns}", file=sys.stderr)
        return 2

    reason = helpers.skip_reason()
    if reason:
        for t in tests:
            print(f"SKIPPED: {reason} [{t.id()}]")
        return 0
    if not os.access(binary, os.X_OK):
        print(f"e2e: ecapture binary {binary} missing or not executable (build it first)",
              file=sys.stderr)
        return 2

    print(f"ecapture e2e: {len(tests)} tests, binary {binary}")
    t0 = time.monotonic()
    result = Result(sys.stdout)
    suite.run(result)
    elapsed = time.monotonic() - t0

    for kind, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, tb in items:
            print("=" * 78)
            print(f"{kind}: {test.id() if hasattr(test, 'id') else test}")
            print("-" * 78)
            print(tb.rstrip())
    print("=" * 78)
    print(f"{len(result.passed)} passed, {len(result.failures)} failed, {len(result.errors)} errors, "
          f"{len(result.skipped)} skipped in {elapsed:.1f} s")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.exit(130)
