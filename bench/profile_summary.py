#!/usr/bin/env python3
"""Summarise a py-spy profile of the demo: where the node's GIL-holding samples go, per thread.

    py-spy record --subprocesses --gil --threads -f raw -r 50 -o prof.txt -- .venv/bin/act_interp_demo
    python bench/profile_summary.py prof.txt

``--gil`` keeps only samples of the thread holding the GIL, so the counts say which thread the forward's
Python code waits for. Samples taken while the node starts (imports, ``ActInterpNode.__init__``) are left
out. Prints the samples per node thread and the main thread's most frequent stacks (innermost 3 frames).
BENCHMARKS.md ("Real time") has the before/after numbers.
"""

from __future__ import annotations

import argparse
import collections
import re

STARTUP = ("_find_and_load", "ActInterpNode.__init__")


def summarise(path: str, process: str = "act_interp_node", top: int = 8) -> str:
    threads: collections.Counter[str] = collections.Counter()
    main: collections.Counter[str] = collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            parts = stack.split(";")
            if len(parts) < 3 or process not in parts[1] or any(s in p for p in parts for s in STARTUP):
                continue
            thread = re.sub(r"thread \(\d+\): ", "", parts[2])
            threads[thread] += int(count)
            if thread == "MainThread":
                frames = [re.sub(r" \(.*?([^/]+\.py):\d+\)", r" (\1)", p) for p in parts[3:]]
                main[" < ".join(reversed(frames[-3:])) or "(no Python frame: inside a C call)"] += int(count)
    lines = [f"GIL-holding samples in {process} after start-up: {sum(threads.values())}"]
    lines += [f"  {t}: {n}" for t, n in threads.most_common()]
    lines.append("main thread, most frequent stacks (innermost first):")
    lines += [f"  {n:4d}  {s[:200]}" for s, n in main.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profile", help="py-spy raw output (-f raw)")
    p.add_argument("--process", default="act_interp_node", help="substring of the process command line")
    print(summarise(p.parse_args().profile, p.parse_args().process))
