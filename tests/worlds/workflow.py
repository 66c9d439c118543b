"""Helpers for workflow tests: events shaped like the shared examples, and a read-back of IAM state."""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def event(name: str = "guardduty-iam-user.json", *, account: str, region: str, **detail_changes) -> dict:
    """A GuardDuty EventBridge event from the examples, moved to `account`/`region` with a fresh finding id."""
    ev = copy.deepcopy(json.loads((FIXTURES / name).read_text()))
    finding = uuid.uuid4().hex
    ev["account"] = ev["detail"]["accountId"] = account
    ev["region"] = ev["detail"]["region"] = region
    ev["detail"]["id"] = finding
    ev["detail"]["arn"] = ev["detail"]["arn"].rsplit("/", 1)[0] + "/" + finding
    ev["detail"].update(detail_changes)
    return ev


def access_key_event(*, account: str, region: str, user_type: str, name: str | None, key: str | None = None) -> dict:
    ev = event(account=account, region=region)
    details = ev["detail"]["resource"]["accessKeyDetails"]
    details["userType"] = user_type
    if name is None:
        details.pop("userName", None)
    else:
        details["userName"] = name
    if key:
        details["accessKeyId"] = key
    return ev


def republished(ev: dict, **detail_changes) -> dict:
    """The same finding as GuardDuty re-publishes it: same id, count one higher, `detail_changes` applied."""
    again = copy.deepcopy(ev)
    again["detail"]["service"]["count"] += 1
    again["detail"].update(detail_changes)
    return again


def iam_state(iam) -> dict:
    """Everything identity containment could change, for before/after comparisons."""
    state: dict = {"users": {}, "roles": {}}
    for user in iam.list_users()["Users"]:
        n = user["UserName"]
        state["users"][n] = {
            "attached": sorted(p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=n)["AttachedPolicies"]),
            "inline": {p: iam.get_user_policy(UserName=n, PolicyName=p)["PolicyDocument"]
                       for p in iam.list_user_policies(UserName=n)["PolicyNames"]},
            "keys": sorted((k["AccessKeyId"], k["Status"]) for k in iam.list_access_keys(UserName=n)["AccessKeyMetadata"]),
        }
    for role in iam.list_roles()["Roles"]:
        n = role["RoleName"]
        state["roles"][n] = {
            "attached": sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=n)["AttachedPolicies"]),
            "inline": {p: iam.get_role_policy(RoleName=n, PolicyName=p)["PolicyDocument"]
                       for p in iam.list_role_policies(RoleName=n)["PolicyNames"]},
        }
    return state


def backdate_cloudtrail(event_name: str, name: str, *, days: float) -> int:
    """Move the in-memory CloudTrail events `event_name` about IAM principal `name` `days` into the past (a tag an
    administrator set last month, or before event history's 90 days). Returns how many events moved."""
    from datetime import timedelta

    from state_machines import gaps_cloudtrail

    moved = 0
    with gaps_cloudtrail._lock:
        for event in gaps_cloudtrail._events:
            record = event["record"]
            params = record.get("requestParameters") or {}
            if record["eventName"] == event_name and name in (params.get("userName"), params.get("roleName")):
                event["time"] -= timedelta(days=days)
                record["eventTime"] = event["time"].strftime("%Y-%m-%dT%H:%M:%SZ")
                moved += 1
    return moved
