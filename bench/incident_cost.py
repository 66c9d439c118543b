"""AWS calls and state transitions per incident (Step Functions bills per transition), counted from executions of
the shipped state machine in the local runtime, next to the minimum set of calls the actions need; plus the
transitions a 10-hour snapshot wait costs with the evidence loop's back-off.

    .venv/bin/python -m bench.incident_cost
"""
from __future__ import annotations

import collections
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"

# The calls the actions cannot do without (changes, plus the reads that find what to change), per scenario.
MINIMUM = {
    "IAM user, 2 keys": [
        "sts:AssumeRole (member role)", "iam:GetAccessKeyLastUsed (the key's owner)",
        "iam:GetUser (ARN + protection tag)", "iam:AttachUserPolicy", "iam:GetLoginProfile",
        "iam:ListAccessKeys", "iam:UpdateAccessKey x2", "iam:PutUserPolicy",
    ],
    "assumed role": ["sts:AssumeRole (member role)", "iam:GetRole (path + protection tag)", "iam:PutRolePolicy"],
}

CATEGORIES = {
    "records and notification (responder account)": ("dynamodb:", "sns:", "states:"),
    "evidence bucket / CloudTrail scoping": ("s3:", "cloudtrail:"),
    "credentials (sts)": ("sts:",),
}


def _example(name: str) -> dict:
    return copy.deepcopy(json.loads((ROOT / "tests" / "fixtures" / name).read_text()))


def _print(title: str, run) -> None:
    calls = run.api_calls
    total = sum(calls.values())
    print(f"\n{title}: {run.status} {run.output.get('outcome') if run.output else run.error}")
    print(f"  state transitions: {run.transitions}   AWS calls by the handlers: {total}")
    by_function: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for call in run.aws_calls:
        by_function[call["function"].replace("ir-responder-", "")][call["api"]] += 1
    for function, counter in by_function.items():
        listed = ", ".join(f"{api} x{n}" if n > 1 else api for api, n in sorted(counter.items()))
        print(f"    {function:<18} {sum(counter.values()):>3}  {listed}")
    for label, prefixes in CATEGORIES.items():
        n = sum(v for k, v in calls.items() if k.startswith(prefixes))
        if n:
            print(f"    of which {label}: {n}")


def ten_hour_wait() -> None:
    from responder import evidence

    waits, elapsed, loops = 0, 0.0, 0
    while elapsed < 10 * 3600:
        elapsed += evidence.wait_seconds(waits, elapsed)
        waits += 1
        loops += 1
    per_loop = 3  # CollectEvidence, EvidenceDone, WaitForEvidence
    print(f"\n10-hour snapshot wait: {loops} loops x {per_loop} transitions = {loops * per_loop} transitions "
          f"(back-off 30 s doubling to a 15 min cap); 24 h: ", end="")
    waits, elapsed, loops = 0, 0.0, 0
    while elapsed < 24 * 3600:
        elapsed += evidence.wait_seconds(waits, elapsed)
        waits += 1
        loops += 1
    print(f"{loops} loops, {loops * per_loop} transitions")


def main(argv: list[str] | None = None) -> int:
    from demo import world_instance
    from state_machines import local

    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
        iam = dep.client("iam")
        iam.create_user(UserName="ci-deployer")
        keys = [iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"] for _ in range(2)]
        role_id = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument="{}")["Role"]["RoleId"]

        ev = _example("guardduty-iam-user.json")
        ev["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = keys[0]
        run = local.execute(ev, dep)
        _print("IAM user, 2 keys", run)
        print("    minimum: " + "; ".join(MINIMUM["IAM user, 2 keys"]))

        ev = _example("guardduty-iam-user.json")
        ev["detail"]["id"] = "b" * 32
        ev["detail"]["resource"]["accessKeyDetails"].update(userType="AssumedRole", userName="app-role",
                                                            accessKeyId="ASIAEXAMPLEKEY000001",
                                                            principalId=f"{role_id}:session")
        run = local.execute(ev, dep)
        _print("assumed role", run)
        print("    minimum: " + "; ".join(MINIMUM["assumed role"]))

        world = world_instance.build(dep)
        ev = _example("guardduty-instance.json")
        ev["detail"]["resource"]["instanceDetails"]["instanceId"] = world["instanceId"]
        run = local.execute(ev, dep)
        _print("instance with 3 volumes (three accounts)", run)
        loops = run.states.count("WaitForEvidence")
        print(f"    evidence loop iterations: {loops} (each: CollectEvidence, EvidenceDone, WaitForEvidence)")
    ten_hour_wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
