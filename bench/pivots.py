"""What following the attacker adds per incident (responder.pivots, responder.rotation): AWS calls and time of the
identity task for the same stolen-key finding, once with an attacker that did nothing but read (no pivot: only
the rotation list's reads are added) and once after the attacker's plan (assume a role, create a key for another
user, create a user, create a KMS grant, read a secret and a parameter), all made with the stolen key in the
in-memory AWS. `--roles` and `--keys` add that many unrelated roles and KMS keys (the rotation list's reads grow
with them up to their bounds: rotation.ROLE_PAGES pages of 100 roles, rotation.MAX_KEYS keys).

The incident report Finalize writes (responder.finalize.write_report) is measured the same way: its calls and
time per incident, and the time and size of the report at the bound of responder.report.MAX_EVENTS events.

    .venv/bin/python -m bench.pivots [--roles 0] [--keys 0]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
ADDED = ("iam:ListRoles", "iam:ListMFADevices", "kms:", "cloudtrail:")


def _identity_calls(run) -> collections.Counter:
    return collections.Counter(c["api"] for c in run.aws_calls if c["function"].endswith("ContainIdentities"))


def _task_seconds(run) -> float:
    started = ended = None
    for event in run.events:
        details = event.get("stateEnteredEventDetails") or event.get("stateExitedEventDetails") or {}
        if details.get("name") == "ContainIdentities":
            when = event["timestamp"].timestamp() if hasattr(event["timestamp"], "timestamp") else event["timestamp"]
            started = when if "stateEnteredEventDetails" in event else started
            ended = when if "stateExitedEventDetails" in event else ended
    return (ended - started) if started and ended else float("nan")


def main(argv: list[str] | None = None) -> int:
    import boto3

    from unittest import mock

    from responder import pivots
    from state_machines import local
    from tests.worlds.pivots import attack, finding, world

    from responder import finalize as finalizing

    spent: list[tuple[float, collections.Counter]] = []
    reported: list[tuple[float, collections.Counter, dict]] = []
    original = pivots.run
    original_report = finalizing.write_report

    def timed_report(*a, **kw):
        first, started = len(local._CALLS), time.perf_counter()
        result = original_report(*a, **kw)
        reported.append((time.perf_counter() - started,
                         collections.Counter(c["api"] for c in local._CALLS[first:]), result))
        return result

    def timed(*a, **kw):  # what following the attacker adds: the calls and time of pivots.run alone
        first, started = len(local._CALLS), time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            spent.append((time.perf_counter() - started,
                          collections.Counter(c["api"] for c in local._CALLS[first:])))

    args = argparse.ArgumentParser()
    args.add_argument("--roles", type=int, default=0)
    args.add_argument("--keys", type=int, default=0)
    opts = args.parse_args(argv)
    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        for i in range(opts.roles):
            dep.client("iam").create_role(RoleName=f"filler-{i}", AssumeRolePolicyDocument=trust)
        for _ in range(opts.keys):
            dep.client("kms").create_key()
        rows = []
        for title, moves in (("no pivots (the attacker only listed users)", False), ("the attacker's plan", True)):
            w = world(dep)
            if moves:
                attack(w)
            else:
                boto3.client("iam", region_name=REGION, aws_access_key_id=w["stolen"]["AccessKeyId"],
                             aws_secret_access_key=w["stolen"]["SecretAccessKey"]).list_users()
            started = time.perf_counter()
            spent.clear()
            reported.clear()
            with mock.patch.object(pivots, "run", timed), mock.patch.object(finalizing, "write_report", timed_report):
                run = local.execute(finding(w), dep, name=f"bench-{uuid.uuid4().hex[:8]}")
            wall = time.perf_counter() - started
            calls = _identity_calls(run)
            added = {api: n for api, n in calls.items() if api.startswith(ADDED) or api in (
                "iam:GetRole", "iam:PutRolePolicy", "iam:UpdateAccessKey")}
            rows.append((title, run.status, sum(calls.values()), added, _task_seconds(run), wall, run.output,
                         spent[0] if spent else (float("nan"), collections.Counter()),
                         reported[0] if reported else (float("nan"), collections.Counter(), {})))
    print(f"roles in the account: {opts.roles} extra, KMS keys: {opts.keys} extra (+ the deployment's own)")
    for title, status, total, added, task, wall, out, (seconds, extra), (r_seconds, r_calls, r_out) in rows:
        print(f"\n{title}: {status}; identity task: {total} AWS calls, {task:.2f} s (execution {wall:.2f} s)")
        print(f"  added by following the attacker: {sum(extra.values())} calls, {seconds:.2f} s: "
              + ", ".join(f"{api} x{n}" for api, n in sorted(extra.items())))
        print(f"  pivots: {json.dumps((out or {}).get('pivots', {}).get('statuses', {}))}, "
              f"rotation items: {(out or {}).get('rotation', {}).get('count', 0)}")
        print("  calls of interest: " + ", ".join(f"{api} x{n}" for api, n in sorted(added.items())))
        print(f"  the report (Finalize): {sum(r_calls.values())} calls, {r_seconds:.2f} s: "
              + ", ".join(f"{api} x{n}" for api, n in sorted(r_calls.items()))
              + f"; {r_out.get('events')} events, page {(r_out.get('html') or {}).get('bytes')} B, "
                f"CSV {(r_out.get('csv') or {}).get('bytes')} B")
    print("\n" + _at_the_bound())
    return 0


def _at_the_bound() -> str:
    """The report of MAX_EVENTS events (each with a 300-character user agent and request parameters), built and
    written to an in-process bucket: the time and size of the worst case Finalize writes."""
    from responder import finalize as finalizing
    from responder import report

    class Bucket:
        bucket = "bench"

        def __init__(self):
            self.objects = {}

        def get_bytes(self, key, version_id=None):
            return self.objects[key]

        def put_json_once(self, key, body, content_type="application/json"):
            if key in self.objects:
                return None
            self.objects[key] = body
            return {"uri": f"s3://bench/{key}", "sha256": finalizing.report_digest(body), "bytes": len(body)}

    events = [{"EventId": f"e-{i}", "EventName": f"Get{i % 40}", "EventTime": f"2026-01-01T00:{i % 60:02d}:00Z",
               "CloudTrailEvent": {"eventName": f"Get{i % 40}", "eventTime": f"2026-01-01T00:{i % 60:02d}:00Z",
                                   "userAgent": "a" * 300, "sourceIPAddress": "198.51.100.7",
                                   "requestParameters": {"name": "x" * 200}, "eventID": f"e-{i}"}}
              for i in range(report.MAX_EVENTS + 500)]
    bucket = Bucket()
    body = json.dumps({"events": events}).encode()
    bucket.objects["incidents/i/cloudtrail/p.json"] = body
    item = {"scope": [{"key": "incidents/i/cloudtrail/p.json", "sha256": finalizing.report_digest(body)}]}
    started = time.perf_counter()
    out = finalizing.write_report(bucket, incident={"incidentId": "i"}, finding={}, summary={"outcome": "contained"},
                                  item=item, journal=[], attempt=1, when="2026-01-01T01:00:00Z")
    seconds = time.perf_counter() - started
    return (f"at the bound ({len(events)} events captured, {report.MAX_EVENTS} kept): {seconds:.2f} s, page "
            f"{out['html']['bytes']:,} B, CSV {out['csv']['bytes']:,} B (budget {finalizing.MAX_REPORT_BYTES:,} B), "
            f"{out['eventsLeftOut']} left out")


if __name__ == "__main__":
    raise SystemExit(main())
