"""Fuzz at scale: thousands of seeded damaged inputs through the real CLI (see tests/fuzz_support.py).

Prints the count of cases per family and outcome, every problem found (a traceback, another exit
code, an error line that does not name the file, output left behind, a time-out), the slowest
case and the peak resident memory of the worst case (the worker runs under RLIMIT_AS 1.5 GB).

    python benchmarks/fuzz.py --cases 3000 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fuzz_support import FAMILIES, MEMORY_LIMIT, generate, run_in_worker  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=500, help="cases per worker process")
    parser.add_argument("--families", default=",".join(FAMILIES))
    args = parser.parse_args()
    families = tuple(f for f in args.families.split(",") if f)
    start = time.perf_counter()
    outcomes, cases = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for b in range(0, args.cases, args.batch):
            batch = generate(Path(tmp) / f"b{b}", min(args.batch, args.cases - b), seed=args.seed * 1000 + b,
                             families=families)
            cases += batch
            outcomes += run_in_worker(batch, timeout=3600)
    wall = time.perf_counter() - start
    table = Counter((c.name.split("/")[0], "exit 2" if o.code == 2 else f"exit {o.code}")
                    for c, o in zip(cases, outcomes))
    print(f"{len(cases)} cases in {wall:.0f} s (memory limit {MEMORY_LIMIT >> 20} MB)")
    for family in families:
        print(f"  {family:<15}" + "  ".join(f"{k}: {n}" for (f, k), n in sorted(table.items()) if f == family))
    problems = [(c, o) for c, o in zip(cases, outcomes) if o.problem]
    print(f"problems: {len(problems)}")
    for c, o in problems[:40]:
        print(f"  {c.name}: {o.problem}  [{c.blame}]")
    worst = max(zip(cases, outcomes), key=lambda co: co[1].peak_mb)
    slow = max(zip(cases, outcomes), key=lambda co: co[1].seconds)
    print(f"peak RSS of the worst case: {worst[1].peak_mb:.0f} MB ({worst[0].name})")
    print(f"slowest case: {slow[1].seconds:.1f} s ({slow[0].name})")


if __name__ == "__main__":
    main()
