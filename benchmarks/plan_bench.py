"""Speed of ``mmlaws plan``: the plan after import (library call), and the whole command.

Prints the median of ``--repeats`` runs of (a) ``plan.plan`` + Markdown rendering in a warm
process, after ``import mmlaws.plan`` and its modules, and (b) the command line
``python -m mmlaws.main plan --compute 1e21 --mix code=0.5,text=0.5`` in a fresh process
(interpreter start and imports included).

    python benchmarks/plan_bench.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    import mmlaws.plan as plan
    from mmlaws.plan import core, render  # noqa: F401  (the import is not timed below)

    print(f"import: {time.perf_counter() - t0:.2f} s")
    call = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        p = plan.plan({"code": 0.5, "text": 0.5}, plan.Budget(flops=1e21))
        plan.markdown(p)
        call.append(time.perf_counter() - t)
    print(f"plan after import: median {statistics.median(call):.3f} s "
          f"({', '.join(f'{x:.3f}' for x in call)})")
    cmd = [sys.executable, "-m", "mmlaws.main", "plan", "--compute", "1e21", "--mix",
           "code=0.5,text=0.5"]
    whole = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        whole.append(time.perf_counter() - t)
    print(f"command, fresh process: median {statistics.median(whole):.2f} s "
          f"({', '.join(f'{x:.2f}' for x in whole)})")


if __name__ == "__main__":
    main()
