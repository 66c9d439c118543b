"""Finding storm: many events for fewer distinct findings through the local runtime (the shipped ASL and handlers).

GuardDuty re-publishes a finding with the same id and a higher `service.count`; each distinct finding must be
contained exactly once, every re-publication recorded as a duplicate, and nothing may fail. Events are started in
concurrent waves, as EventBridge would start them, so re-publications race the first execution.

    .venv/bin/python -m bench.storm [--events 1000] [--findings 200] [--wave 50]
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

MEMBER, REGION = "444455556666", "eu-west-1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--findings", type=int, default=200)
    parser.add_argument("--wave", type=int, default=50, help="executions started together")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    import boto3

    from state_machines import local

    base = json.loads((ROOT / "tests" / "fixtures" / "guardduty-iam-user.json").read_text())
    rng = random.Random(args.seed)
    events = []
    for i in range(args.events):
        f = i % args.findings
        ev = copy.deepcopy(base)
        ev["account"] = ev["detail"]["accountId"] = MEMBER
        ev["detail"]["id"] = f"storm{f:027d}"
        ev["detail"]["resource"]["accessKeyDetails"]["userName"] = f"storm-user-{f}"
        ev["detail"]["service"]["count"] = i // args.findings + 1
        events.append(ev)
    rng.shuffle(events)

    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, region=REGION)
        iam = dep.client("iam")
        for f in range(args.findings):
            iam.create_user(UserName=f"storm-user-{f}")
            iam.create_access_key(UserName=f"storm-user-{f}")
        sfn = boto3.client("stepfunctions", region_name=REGION)
        outcomes: collections.Counter = collections.Counter()
        transitions = 0
        started = time.perf_counter()
        cpu = time.process_time()
        for w in range(0, len(events), args.wave):
            arns = [sfn.start_execution(stateMachineArn=dep.state_machine_arn, name=f"storm-{w + j}",
                                        input=json.dumps(ev))["executionArn"]
                    for j, ev in enumerate(events[w:w + args.wave])]
            for arn in arns:
                run = local.wait(arn, dep, timeout=600)
                transitions += run.transitions
                outcomes[(run.output or {}).get("outcome") or f"{run.status}:{run.error}"] += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        inactive = sum(
            all(k["Status"] == "Inactive" for k in iam.list_access_keys(UserName=f"storm-user-{f}")["AccessKeyMetadata"])
            for f in range(args.findings))

    contained = outcomes.get("contained", 0)
    duplicates = outcomes.get("duplicate", 0)
    failures = sum(n for k, n in outcomes.items() if k not in ("contained", "duplicate"))
    print(f"{args.events} events for {args.findings} findings, started in waves of {args.wave}")
    print(f"containments: {contained} (goal {args.findings})   duplicates: {duplicates} "
          f"(goal {args.events - args.findings})   other/failures: {failures} (goal 0)   {dict(outcomes)}")
    print(f"users with every key inactive afterwards: {inactive}/{args.findings}")
    print(f"state transitions: {transitions} ({transitions / args.events:.1f} per event)   "
          f"wall {elapsed:.1f} s, CPU {cpu:.1f} s for the local runtime")
    ok = contained == args.findings and duplicates == args.events - args.findings and failures == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
