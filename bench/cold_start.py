"""Cold start per Lambda handler: a fresh interpreter imports the handler module and creates the boto3 clients its
first call needs, from the session the handlers use (responder.aws.clients: lean service models); the baseline, in
the same run, is `import boto3` plus one client of boto3's own session. Prints the median of several
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

# handler module -> every client its first call creates (service names), the incident record's (dynamodb) included:
# triage's Step Functions client only on a repeated finding; finalize's for the raw input and the custody key
# (kms) whenever it writes a manifest. `--as-filed`: the lists the figures were measured with.
HANDLERS = {
    "handlers.triage": ["dynamodb"],
    "handlers.identity": ["sts", "iam", "cloudtrail", "s3", "kms", "dynamodb"],
    "handlers.isolate": ["sts", "ec2", "iam", "autoscaling", "elb", "elbv2", "s3", "dynamodb"],
    "handlers.evidence": ["sts", "ec2", "ebs", "kms", "dynamodb"],
    "handlers.finalize": ["dynamodb", "stepfunctions", "sts", "s3", "kms", "sns"],
    "handlers.workstation": ["sts", "ec2", "dynamodb"],
    "handlers.release": ["sts", "iam", "dynamodb"],
}
AS_FILED = {
    "handlers.triage": ["dynamodb"],
    "handlers.identity": ["sts", "iam", "cloudtrail", "s3"],
    "handlers.isolate": ["sts", "ec2", "iam", "autoscaling", "elb", "elbv2", "s3"],
    "handlers.evidence": ["sts", "ec2", "ebs", "kms"],
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
    # the baseline: boto3's own session; a handler: the session its clients come from (responder.aws.clients)
    session = ("import boto3\nmake = boto3.session.Session().client" if module is None
               else "from responder.aws import clients\nmake = clients._base_session().create_client")
    clients = "\n".join([session] + [f"make({svc!r}, region_name='us-east-1')" for svc in services])
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
    parser.add_argument("--as-filed", action="store_true", help="the client lists of the issue's figures")
    args = parser.parse_args(argv)
    handlers = AS_FILED if args.as_filed else HANDLERS
    # interleaved: each run probes the baseline right before each handler, and the ratio is the median of the
    # per-run ratios, so a busy machine slows both sides of each ratio alike
    rows: dict[str | None, list[dict]] = {None: [], **{m: [] for m in handlers}}
    ratios: dict[str, list[float]] = {m: [] for m in handlers}
    for _ in range(args.runs):
        for module, services in handlers.items():
            base, got = probe(None, ["sts"]), probe(module, services)
            rows[None].append(base)
            rows[module].append(got)
            ratios[module].append((got["import"] + got["clients"]) / (base["import"] + base["clients"]))

    def row(label: str, samples: list[dict], ratio: float) -> str:
        imp = statistics.median(s["import"] for s in samples) * 1000
        cli = statistics.median(s["clients"] for s in samples) * 1000
        tot = statistics.median(s["import"] + s["clients"] for s in samples) * 1000
        return f"{label:<22}{imp:>11.1f}{cli:>12.1f}{tot:>10.1f}{samples[0]['modules']:>9}{ratio:>8.2f}"

    print(f"cold start (median of {args.runs} fresh interpreters; ratio = median of total / baseline, interleaved)")
    print(f"{'handler':<22}{'import ms':>11}{'clients ms':>12}{'total ms':>10}{'modules':>9}{'ratio':>8}")
    print(row("baseline boto3+1", rows[None], 1.0))
    for module in handlers:
        print(row(module, rows[module], statistics.median(ratios[module])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
