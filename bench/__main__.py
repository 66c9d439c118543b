"""`make bench`: run every benchmark and print its figures (each is also runnable alone: python -m bench.<name>)."""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

BENCHMARKS = [
    ("1. cold start per handler", "bench.cold_start", []),
    ("2. finding -> first containment call", "bench.first_containment", []),
    ("3. AWS calls and state transitions per incident", "bench.incident_cost", []),
    ("4. block-list hashing over a synthetic 16 TiB listing", "bench.hash_blocklist", []),
    ("5. finding storm", "bench.storm", []),
    ("6. largest state payload and record size (16 instances)", "bench.payload", []),
    ("7. load balancers at estate scale: 500 target groups", "bench.lb_scale", []),
    ("8. following the attacker: calls and time per incident", "bench.pivots", []),
    ("9. an estate: 200 findings over 15 accounts and 4 regions", "bench.estate", []),
]


def main() -> int:
    failed = 0
    for title, module, args in BENCHMARKS:
        print("=" * 100)
        print(title)
        print("=" * 100, flush=True)
        started = time.perf_counter()
        try:
            code = importlib.import_module(module).main(args)
        except ModuleNotFoundError as exc:
            print(f"(not available: {exc})")
            code = 1
        failed += bool(code)
        print(f"[{module}: {time.perf_counter() - started:.1f} s]\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
