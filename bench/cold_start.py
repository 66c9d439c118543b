"""Cold start per Lambda handler: a fresh interpreter imports the handler module and creates the boto3 clients its
first call needs; the baseline, in the same run, is `import boto3` plus one client. Prints the median of several
runs and the ratio to the baseline.

    .venv/bin/python -m bench.cold_start [--runs 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# handler module -> clients its first call creates (service names)
HANDLERS = {
    "handlers.triage": ["dynamodb"],
    "handlers.identity": ["sts", "iam", "cloudtrail", "s3"],
    "handlers.isolate": ["sts", "ec2", "iam", "autoscaling", "elb", "elbv2", "s3"],
    "handlers.evidence": ["sts", "ec2", "ebs"],
    "handlers.finalize": ["dynamodb", "sns", "sts", "s3"],
}

PROBE = """
import os, sys, time, json
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "x"); os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "x")
sys.path[:0] = [{lambdas!r}]
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{clients}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "clients": t2 - t1, "modules": len(sys.modules)}}))
"""


def probe(module: str | None, services: list[str]) -> dict:
    if module is None:
        imports = "import boto3"
    else:
        imports = f"import {module}"
    clients = "\n".join(
        ["import boto3", "s = boto3.session.Session()"] + [f"s.client({svc!r}, region_name='us-east-1')" for svc in services]
    )
    code = PROBE.format(lambdas=str(ROOT / "lambdas"), imports=imports, clients=clients)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(module: str | None, services: list[str], runs: int) -> dict:
    samples = [probe(module, services) for _ in range(runs)]
    total = [s["import"] + s["clients"] for s in samples]
    return {
        "import_ms": statistics.median(s["import"] for s in samples) * 1000,
        "clients_ms": statistics.median(s["clients"] for s in samples) * 1000,
        "total_ms": statistics.median(total) * 1000,
        "modules": samples[0]["modules"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    base = measure(None, ["sts"], args.runs)
    print(f"cold start (median of {args.runs} fresh interpreters; ratio = total / baseline)")
    print(f"{'handler':<22}{'import ms':>11}{'clients ms':>12}{'total ms':>10}{'modules':>9}{'ratio':>8}")
    print(f"{'baseline boto3+1':<22}{base['import_ms']:>11.1f}{base['clients_ms']:>12.1f}{base['total_ms']:>10.1f}"
          f"{base['modules']:>9}{1.0:>8.2f}")
    for module, services in HANDLERS.items():
        m = measure(module, services, args.runs)
        print(f"{module:<22}{m['import_ms']:>11.1f}{m['clients_ms']:>12.1f}{m['total_ms']:>10.1f}{m['modules']:>9}"
              f"{m['total_ms'] / base['total_ms']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
