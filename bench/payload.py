"""The workflow's largest state payload (Step Functions fails an execution above 256 KiB with
States.DataLimitExceeded, which no Catch handles) and the incident record's size (DynamoDB: 400 KB), for a manual
request with many instances (default 16, the request that failed before the payload redesign; `50` is the most
Triage accepts) of four volumes each, plus 50 IAM users.

    .venv/bin/python -m bench.payload [instances]
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
AMI = "ami-0abcdef1234567890"


def largest(run) -> tuple[int, str]:
    """The largest state data after Triage in the run's history (bytes) and where."""
    sizes = [(size, f"{state} {what}") for state, what, size in run.payload_sizes
             if state != "$input" and not (state == "Triage" and what.endswith((".input", ".parameters")))]
    return max(sizes) if sizes else (0, "")


def main(argv: list[str] | None = None) -> int:
    from responder.aws.dynamodb import deserialize, serialize
    from state_machines import gaps_ebs, local

    count = int((argv or [16])[0]) if argv else 16
    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
        gaps_ebs.set_pending_polls(0)
        mappings = [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}] + [
            {"DeviceName": f"/dev/sd{c}", "Ebs": {"VolumeSize": 1}} for c in "fgh"]
        ids = [i["InstanceId"] for i in dep.client("ec2").run_instances(
            ImageId=AMI, MinCount=count, MaxCount=count, InstanceType="t3.micro",
            BlockDeviceMappings=mappings)["Instances"]]
        iam = dep.client("iam")
        users = [f"bench-{n}" for n in range(50)]
        for name in users:
            iam.create_user(UserName=name)
        incident_id = f"IR-BENCH-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "payload bench",
                                        "incidentId": incident_id, "iamUsers": users, "instances": ids}},
                            dep, timeout=3600)
        elapsed = time.perf_counter() - started
        size, where = largest(run)
        ddb = local.session(None, REGION).client("dynamodb")
        item = deserialize(ddb.get_item(TableName=dep.table_name, Key={"incidentId": {"S": incident_id}},
                                        ConsistentRead=True).get("Item")) or {}
        print(f"manual request: {count} instances x 4 volumes + 50 IAM users: {run.status} "
              f"{(run.output or {}).get('outcome')}  ({elapsed:.0f} s locally)")
        print(f"  largest state payload after Triage: {size:,} bytes ({size / 1024:.1f} KiB; limit 256 KiB) at {where}")
        print(f"  execution output: {len(json.dumps(run.output or {})):,} bytes")
        print(f"  incident record: ~{len(json.dumps(serialize(item), default=str)):,} bytes (limit 400 KB), "
              f"status {item.get('status')}, timeline {len(item.get('timeline') or [])} entries"
              + (f", {item['timelineOmitted']} omitted" if item.get("timelineOmitted") else ""))
        print(f"  state transitions: {run.transitions}")
    return 0 if run.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
