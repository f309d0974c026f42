#!/usr/bin/env python3
"""Cost of one SSL_write() of 1 KiB under three conditions, measured in one run:

  (a) plain     no probes at all
  (b) empty     an empty uprobe + uretprobe on SSL_write (bench/empty_probe)
  (c) ecapture  `ecapture tls` capturing, its stdout to /dev/null

Each repetition runs the three conditions in a rotated order (interleaved, so that drift of the
machine hits all of them alike); the median of each condition is reported, with the ratios.

Usage: python3 bench/ssl_write_cost.py --build /abs/build [--calls 20000] [--reps 5]
Needs root (uprobes). Standard library only.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_LIB = "/usr/lib/x86_64-linux-gnu/libssl.so.3"


class BenchError(Exception):
    pass


def run_loop(loop, calls, warmup):
    res = subprocess.run([loop, str(calls), str(warmup)], capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise BenchError(f"{loop} exited {res.returncode}: {res.stderr.strip()}")
    m = re.search(r"^ns_per_call ([0-9.]+)$", res.stdout, re.M)
    if not m:
        raise BenchError(f"{loop}: no ns_per_call in output: {res.stdout!r}")
    return float(m.group(1))


def stop(proc, sig=signal.SIGINT, timeout=10.0):
    """Stops one process we started, by pid; SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def wait_for_text(proc, path, needle, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if needle in f.read():
                return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(path, "rb") as f:
        text = f.read().decode(errors="replace")
    raise BenchError(f"{what} did not report {needle!r} (exit={proc.poll()}):\n{text}")


def measure_plain(cfg, tmp):
    return run_loop(cfg.loop, cfg.calls, cfg.warmup), ""


def measure_empty(cfg, tmp):
    out = os.path.join(tmp, "empty_probe.out")
    with open(out, "wb") as f:
        proc = subprocess.Popen([cfg.empty, cfg.lib, "SSL_write"], stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_for_text(proc, out, b"attached", 15, "empty_probe")
        ns = run_loop(cfg.loop, cfg.calls, cfg.warmup)
    finally:
        rc = stop(proc)
    if rc != 0:
        raise BenchError(f"empty_probe exited {rc}")
    return ns, ""


def measure_ecapture(cfg, tmp):
    err = os.path.join(tmp, "ecapture.err")
    with open(err, "wb") as f, open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen([cfg.ecapture, "tls", "--libssl", cfg.lib], stdout=devnull, stderr=f)
    try:
        wait_for_text(proc, err, b"capture started", 30, "ecapture")
        ns = run_loop(cfg.loop, cfg.calls, cfg.warmup)
        time.sleep(0.2)  # let the reader drain before we stop it
    finally:
        rc = stop(proc)
    with open(err, "rb") as f:
        text = f.read().decode(errors="replace")
    if rc != 0:
        raise BenchError(f"ecapture exited {rc}:\n{text}")
    m = re.search(r"summary: events=(\d+) bytes=(\d+) lost=(\d+)", text)
    note = f"events={m.group(1)} bytes={m.group(2)} lost={m.group(3)}" if m else "no summary line"
    if m and int(m.group(1)) < cfg.calls:
        note += f"  (WARNING: fewer events than the {cfg.calls} measured calls)"
    return ns, note


def other_bpf_links():
    """Ids and types of BPF links that exist now (uprobes show as perf_event links)."""
    try:
        res = subprocess.run(["bpftool", "-j", "link", "list"], capture_output=True, text=True,
                             timeout=30)
        links = json.loads(res.stdout or "[]") if res.returncode == 0 else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    return [f"{x.get('id')}:{x.get('type')}" for x in links]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="the CMake build directory (absolute)")
    ap.add_argument("--calls", type=int, default=20000, help="timed SSL_write calls per measurement")
    ap.add_argument("--warmup", type=int, default=500, help="untimed SSL_write calls before timing")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each condition")
    ap.add_argument("--lib", default=DEFAULT_LIB, help="the libssl that ssl_write_loop uses")
    ap.add_argument("--ecapture", help="ecapture binary (default: <build>/ecapture)")
    cfg = ap.parse_args()

    cfg.loop = os.path.join(cfg.build, "bench", "ssl_write_loop")
    cfg.empty = os.path.join(cfg.build, "bench", "empty_probe")
    cfg.ecapture = cfg.ecapture or os.path.join(cfg.build, "ecapture")

    if os.geteuid() != 0:
        print("ssl_write_cost: needs root (uprobes); nothing measured", file=sys.stderr)
        return 1
    for path in (cfg.loop, cfg.empty):
        if not os.access(path, os.X_OK):
            print(f"ssl_write_cost: {path} missing; build it with "
                  f"`cmake --build {cfg.build} --target ssl_write_loop empty_probe`", file=sys.stderr)
            return 1
    conditions = [("a", "plain (no probe)", measure_plain),
                  ("b", "empty uprobe+uretprobe", measure_empty)]
    if os.access(cfg.ecapture, os.X_OK):
        conditions.append(("c", "ecapture tls -> /dev/null", measure_ecapture))
    else:
        print(f"ssl_write_cost: {cfg.ecapture} missing; measuring (a) and (b) only", file=sys.stderr)

    foreign = other_bpf_links()
    if foreign:
        print(f"WARNING: {len(foreign)} BPF link(s) already exist before the benchmark ({foreign}); "
              f"if another tool has uprobes on {cfg.lib}, every condition includes their cost "
              f"and the ratios are wrong", file=sys.stderr)

    results = {key: [] for key, _, _ in conditions}
    notes = {key: [] for key, _, _ in conditions}
    print(f"SSL_write of 1 KiB, {cfg.calls} timed calls per measurement, {cfg.reps} repetitions, "
          f"lib {cfg.lib}")
    with tempfile.TemporaryDirectory(prefix="ecap-bench-") as tmp:
        run_loop(cfg.loop, 2000, 100)  # warm the page cache and CPU frequency, discarded
        for rep in range(cfg.reps):
            k = rep % len(conditions)
            order = conditions[k:] + conditions[:k]
            for key, label, fn in order:
                try:
                    ns, note = fn(cfg, tmp)
                except BenchError as e:
                    print(f"ssl_write_cost: ({key}) {label}: {e}", file=sys.stderr)
                    return 1
                results[key].append(ns)
                if note:
                    notes[key].append(note)
                print(f"  rep {rep + 1}/{cfg.reps}  ({key}) {label:<28} {ns:10.1f} ns/call"
                      + (f"   [{note}]" if note else ""), flush=True)

    med = {key: statistics.median(v) for key, v in results.items()}
    print()
    print(f"{'condition':<34} {'median ns/call':>15} {'min':>10} {'max':>10}")
    for key, label, _ in conditions:
        v = results[key]
        print(f"({key}) {label:<30} {med[key]:15.1f} {min(v):10.1f} {max(v):10.1f}")
    print()
    a, b = med["a"], med["b"]
    print(f"(b)/(a)  empty probe pair vs no probe       : {b / a:8.2f}x")
    if "c" in med:
        c = med["c"]
        print(f"(c)/(b)  ecapture vs empty probe pair       : {c / b:8.2f}x")
        print(f"(c)/(a)  ecapture vs no probe               : {c / a:8.2f}x")
        if b > a:
            print(f"((c)-(a))/((b)-(a))  ecapture's added cost in units of the empty pair's: "
                  f"{(c - a) / (b - a):8.2f}")
        else:
            print("((c)-(a))/((b)-(a))  undefined: the empty probe pair cost nothing measurable "
                  "(is the probe attached to the library ssl_write_loop uses?)")
        print(f"per-call cost added by ecapture: {c - a:.1f} ns; by the empty pair: {b - a:.1f} ns")
    else:
        print(f"per-call cost added by the empty pair: {b - a:.1f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
