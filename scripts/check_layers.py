#!/usr/bin/env python3
"""Checks the folder-level include graph of src/ (run by `make unit`).

Fails (exit 1, one line per problem) when
  - a module folder src/modules/<a>/ includes another module's folder src/modules/<b>/,
  - src/cli, src/api or a shared folder includes any module folder,
  - two folders include each other, directly or through others (a cycle).
Only src/modules/all_modules.cc, the registry's list, may name every module.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(rel):
    """'modules/gotls/x.cc' -> 'modules/gotls'; 'core/x.h' -> 'core'; 'modules/a.cc' -> 'modules'."""
    parts = rel.split("/")
    if parts[0] == "modules" and len(parts) > 2:
        return "modules/" + parts[1]
    return parts[0]


def include_graph():
    graph = {}
    for root, _, files in os.walk(SRC):
        for name in files:
            path = os.path.join(root, name)
            here = folder_of(os.path.relpath(path, SRC))
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                if "/" not in inc or not os.path.exists(os.path.join(SRC, inc)):
                    continue  # generated headers, BPF ABI headers, system headers
                there = folder_of(inc)
                if there != here:
                    graph.setdefault(here, {}).setdefault(there, path)
    return graph


def find_cycle(graph):
    state = {}  # folder -> 1 on the stack, 2 done

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    graph = include_graph()
    problems = []
    for here, targets in sorted(graph.items()):
        for there, path in sorted(targets.items()):
            if there.startswith("modules/") and here != "modules":
                problems.append(f"{os.path.relpath(path, SRC)}: {here} includes module {there}")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("include cycle between folders: " + " -> ".join(cycle))
    for p in problems:
        print("check_layers: " + p)
    if not problems:
        print(f"check_layers: {len(graph)} folders, no cross-module include, no cycle")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
