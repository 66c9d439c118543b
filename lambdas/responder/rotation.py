"""What the on-call must rotate, in the field runbook's order (step 5: "Rotate in this order: long-lived IAM user
keys, role trust policies that reference compromised principals, KMS key policies, then any application secrets
the principal could read from Secrets Manager or Parameter Store. Do not skip the KMS step."). Nothing here
changes anything: the list, each item with the exact command, goes to the record, the manifest and the
notification.

The compromised principals are the incident's contained identities and the users / roles the attacker created
(responder.pivots). In that order:

1. ``access_key`` - every access key of a compromised user (ListAccessKeys) and every key the attacker created;
2. ``role_trust`` - the account's roles whose trust policy names a compromised principal (by ARN or unique id),
   read with ListRoles (at most `ROLE_PAGES` pages of 100 roles), and the roles the attacker created;
3. ``kms_key_policy`` / ``kms_grant`` - in the incident's Region (and the Regions of the attacker's grants): the
   key policies naming a compromised principal and the grants whose grantee or retiring principal is one, for at
   most `MAX_KEYS` keys (ListKeys, GetKeyPolicy, one ListGrants page of 100 per key), and every grant the attacker
   created (revoked or not: the on-call confirms);
4. ``secret`` / ``parameter`` - what the principal read (GetSecretValue, GetParameter(s): responder.attacker_plan),
   by ARN.

Reads that fail or are cut by the bounds (`BUDGET_SECONDS` in all) are listed in ``incomplete``: the list never
claims to be complete when it is not.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable

from responder.errors import best_effort, error_code

ROLE_PAGES = 10
MAX_KEYS = 50
MAX_ITEMS = 100
BUDGET_SECONDS = 20.0
ORDER = ("access_key", "role_trust", "kms_key_policy", "kms_grant", "secret", "parameter")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def names(document: Any, principals: set[str]) -> bool:
    """Does a policy document name one of `principals` (ARNs or unique ids) in a statement's Principal or
    Condition? Pure."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    statements = (document or {}).get("Statement") if isinstance(document, dict) else None
    statements = [statements] if isinstance(statements, dict) else statements or []
    return any(isinstance(s, dict) and any(v in principals for v in _strings([s.get("Principal"),
                                                                              s.get("Condition")]))
               for s in statements)


def _item(kind: str, arn: str, reason: str, command: str, event_id: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "arn": arn, "reason": reason, "eventId": event_id, "command": command}


def compromised(incident: dict, identities: list[dict], pivots: list[dict]) -> tuple[set[str], list[str]]:
    """(ARNs and unique ids of the compromised principals, the compromised users' names)."""
    found: set[str] = set()
    users: list[str] = []
    for result in identities:
        if result.get("status") not in ("contained", "already_contained", "planned"):
            continue
        target = str(result.get("target") or "")
        if target.startswith("arn:"):
            found.add(target)
            if ":user/" in target and result.get("name"):
                users.append(result["name"])
    for identity in incident.get("identities") or []:
        if str(identity.get("principalId") or "").startswith(("AIDA", "AROA")):
            found.add(identity["principalId"].split(":", 1)[0])
    for pivot in pivots:
        if pivot["kind"] in ("created_user", "created_role") and pivot.get("status") in (
                "contained", "already_contained", "planned"):
            found.add(pivot["target"])
    return found, users


def build(incident: dict, *, identities: list[dict], pivots: list[dict], reads: list[dict], iam: Any,
          kms_for: Callable[[str], Any] | None, monotonic: Callable[[], float] = time.monotonic,
          budget: float = BUDGET_SECONDS) -> dict[str, Any]:
    """``{"items": [...ordered], "incomplete": [...], "calls": n}`` (see the module docstring)."""
    deadline = monotonic() + budget
    principals, users = compromised(incident, identities, pivots)
    items: list[dict] = []
    incomplete: list[str] = []
    calls = [0]

    def read(what: str, fn: Callable[[], Any]) -> Any:
        if monotonic() > deadline:
            incomplete.append(f"{what}: time budget ({budget:.0f} s) spent")
            return None
        calls[0] += 1
        try:
            return fn()
        except Exception as exc:  # a read for the list never fails the task: it is listed as not done
            if not best_effort(exc):
                raise
            incomplete.append(f"{what}: {error_code(exc)}")
            return None

    partition, account = incident.get("partition") or "aws", incident.get("accountId")
    # 1. long-lived keys
    for user in dict.fromkeys(users):
        for key in read(f"ListAccessKeys {user}", lambda u=user: iam.access_keys(u)) or []:
            items.append(_item("access_key", f"arn:{partition}:iam::{account}:user/{user}",
                               f"access key {key['AccessKeyId']} of the compromised user {user} (deactivated by the "
                               "responder): replace it where it is used, then delete it",
                               f"aws iam create-access-key --user-name {user} && aws iam delete-access-key "
                               f"--user-name {user} --access-key-id {key['AccessKeyId']}"))
    for pivot in pivots:
        if pivot["kind"] == "created_key" and pivot.get("status") != "not_found":
            user = pivot.get("userName") or "?"
            items.append(_item("access_key", f"arn:{partition}:iam::{account}:user/{user}",
                               f"access key {pivot['target']} created by the attacker for {user} ({pivot['status']})",
                               f"aws iam delete-access-key --user-name {user} --access-key-id {pivot['target']}",
                               pivot.get("eventId")))
    # 2. role trust policies
    listed = read("ListRoles", lambda: iam.roles(pages=ROLE_PAGES))
    if listed is not None:
        roles, truncated = listed
        if truncated:
            incomplete.append(f"ListRoles: only the first {ROLE_PAGES * 100} roles read")
        for role in roles:
            if principals and names(role.get("AssumeRolePolicyDocument"), principals):
                items.append(_item("role_trust", role["Arn"], "the role's trust policy names a compromised principal",
                                   _trust_command(role["RoleName"])))
    for pivot in pivots:
        if pivot["kind"] == "created_role" and pivot.get("status") != "not_verified":
            items.append(_item("role_trust", pivot["target"], "a role the attacker created: its trust policy says "
                               "who may assume it", _trust_command(pivot.get("roleName") or "?"), pivot.get("eventId")))
    # 3. KMS key policies and grants
    if kms_for is not None and principals:
        regions = [incident["region"]] + [p["region"] for p in pivots if p["kind"] == "kms_grant" and p.get("region")]
        for region in dict.fromkeys(regions):
            kms = kms_for(region)
            listed = read(f"ListKeys {region}", lambda k=kms: k.keys(limit=MAX_KEYS))
            if listed is None:
                continue
            keys, truncated = listed
            if truncated:
                incomplete.append(f"ListKeys {region}: only the first {MAX_KEYS} keys read")
            for key in keys:
                policy = read(f"GetKeyPolicy {key}", lambda k=kms, a=key: k.key_policy(a))
                if policy and names(policy, principals):
                    items.append(_item("kms_key_policy", key, "the key policy names a compromised principal",
                                       f"aws kms get-key-policy --key-id {key} --policy-name default --query Policy "
                                       f"--output text > policy.json && (edit policy.json) && aws kms put-key-policy "
                                       f"--key-id {key} --policy-name default --policy file://policy.json "
                                       f"--region {region}"))
                got = read(f"ListGrants {key}", lambda k=kms, a=key: k.grants(a))
                for grant in (got or ([], False))[0]:
                    if {grant.get("GranteePrincipal"), grant.get("RetiringPrincipal")} & principals:
                        items.append(_item("kms_grant", f"{key}/grant/{grant['GrantId']}",
                                           f"a grant for {grant.get('GranteePrincipal')} "
                                           f"({', '.join(grant.get('Operations') or [])})",
                                           _revoke_command(key, grant["GrantId"], region)))
    for pivot in pivots:
        if pivot["kind"] == "kms_grant":
            revoked = pivot.get("status") in ("contained", "already_contained")
            items.append(_item("kms_grant", pivot["target"], "a grant the attacker created: " + (
                "revoked by the responder, confirm it is gone" if revoked else f"{pivot.get('status')}, revoke it"),
                f"aws kms list-grants --key-id {pivot.get('keyArn')} --region {pivot.get('region')}" if revoked
                else _revoke_command(pivot.get("keyArn"), pivot.get("grantId"), pivot.get("region")),
                pivot.get("eventId")))
    # 4. what it read
    for found in reads:
        region = found.get("region") or incident["region"]
        if found["kind"] == "secret":
            command = (f"aws secretsmanager rotate-secret --secret-id {found['arn']} --region {region} (no rotation "
                       "function: change the credential at its source, then aws secretsmanager put-secret-value)")
        else:
            command = (f"aws ssm put-parameter --name {found['name']} --type SecureString --value <new value> "
                       f"--overwrite --region {region} (after changing what the value grants)")
        items.append(_item(found["kind"], found["arn"], f"read by the compromised principal ({found['eventName']})",
                           command, found.get("eventId")))
    items = _dedupe(items)
    items.sort(key=lambda i: ORDER.index(i["kind"]))
    if len(items) > MAX_ITEMS:
        incomplete.append(f"{len(items) - MAX_ITEMS} items left out (at most {MAX_ITEMS})")
        items = items[:MAX_ITEMS]
    for n, item in enumerate(items, 1):
        item["order"] = n
    return {"items": [{"order": i.pop("order"), **i} for i in items], "incomplete": incomplete, "calls": calls[0]}


def _dedupe(items: list[dict]) -> list[dict]:
    """One item per (kind, ARN): the one that cites an event wins."""
    kept: dict[tuple, dict] = {}
    for item in items:
        key = (item["kind"], item["arn"], item["reason"] if item["kind"] == "access_key" else "")
        if key not in kept or (item.get("eventId") and not kept[key].get("eventId")):
            kept[key] = item
    return list(kept.values())


def _trust_command(role: str) -> str:
    return (f"aws iam get-role --role-name {role} --query Role.AssumeRolePolicyDocument > trust.json && (remove the "
            f"compromised principal) && aws iam update-assume-role-policy --role-name {role} --policy-document "
            "file://trust.json")


def _revoke_command(key: Any, grant: Any, region: Any) -> str:
    return f"aws kms revoke-grant --key-id {key} --grant-id {grant} --region {region}"


def summary(result: dict[str, Any], limit: int = 3) -> dict[str, Any]:
    """The list as the task's output and the notification carry it: the count and the first few items."""
    items = result.get("items") or []
    out = {"count": len(items), "items": [{k: i.get(k) for k in ("order", "kind", "arn")} for i in items[:limit]]}
    if result.get("incomplete"):
        out["incomplete"] = len(result["incomplete"])
    return out
