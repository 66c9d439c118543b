"""Identity containment: decide what to do with each identity of an incident, and do it through the IAM adapter.

IAMUser      attach the quarantine managed policy; deactivate access keys (never delete); put the inline
             ``AWSRevokeOlderSessions`` deny on the user so session tokens minted before the cut-off die too.
             Keys: ``IR_KEY_SCOPE=all`` (default, the field runbook: "deactivate all access keys": the whole user
             is quarantined anyway) or ``named`` (only the finding's key, when it is one of the user's long-term
             keys; any other case falls back to all).
AssumedRole  inline ``AWSRevokeOlderSessions`` on the role, cut-off = the incident's UTC cut-off. Service-linked and
             IAM Identity Center (``AWSReservedSSO_*``) roles cannot be changed this way: recorded with manual steps.
Root, FederatedUser and other types: IAM cannot contain them; the outcome records the steps a person must take.

Every step reads first and changes only what is not already so: a second run changes nothing. A protected
principal (see responder.protection) is never touched.
"""
from __future__ import annotations

from typing import Any, Callable

from responder.aws.iam import Iam
from responder.errors import recorded
from responder.journal import Journal
from responder.policies import covers, revoke_cutoff, revoke_older_sessions
from responder.protection import UNVERIFIABLE, protected_reason
from responder.settings import REVOKE_POLICY_NAME, Settings

MANUAL_STEPS: dict[str, list[str]] = {
    "Root": [
        "Sign in as the account root user (or use centralized root access: sts:AssumeRoot from the management "
        "account) and change the root password.",
        "Delete every root access key (IAM console > Security credentials) and deactivate root signing certificates.",
        "Check the root user's MFA devices: remove unknown ones, register a hardware MFA.",
        "Review CloudTrail for userIdentity.type = 'Root' over the finding's window and undo what the attacker did.",
    ],
    "FederatedUser": [
        "A federated session (sts:GetFederationToken) inherits the permissions of the IAM user that created it.",
        "Find that IAM user in CloudTrail (GetFederationToken events, the finding's principalId), then run a "
        "manual request for that user: its keys are deactivated and its older sessions denied.",
    ],
    "SSO": [
        "This role is managed by IAM Identity Center and cannot be changed through IAM.",
        "In IAM Identity Center: disable the user (or remove the account assignment), then delete the user's "
        "active sessions; optionally add an inline deny on aws:TokenIssueTime to the permission set.",
    ],
    "ServiceLinked": [
        "Service-linked roles cannot be changed. Contain the resource that uses the role (instance, function, "
        "cluster) and review the service's activity in CloudTrail.",
    ],
    "Other": [
        "GuardDuty reported an identity type the responder cannot act on through IAM. Identify the principal "
        "from the finding's principalId in CloudTrail and contain it by hand.",
    ],
}


def _result(identity: dict, target: str, journal: Journal, status: str, **extra: Any) -> dict[str, Any]:
    if journal.failures:
        status = "failed"
    return {"kind": "identity", "type": identity["type"], "name": identity.get("name"), "target": target,
            "status": status, "entries": journal.entries, **extra}


def _changed_status(journal: Journal) -> str:
    if journal.dry_run and journal.changes:
        return "planned"
    return "contained" if journal.changes else "already_contained"


def contain_user(iam: Iam, journal: Journal, identity: dict, incident: dict, settings: Settings) -> dict[str, Any]:
    name = identity["name"]
    user = iam.get_user(name)
    if user is None:
        journal.note("not_found", name, detail="no such IAM user in the account")
        return _result(identity, name, journal, "not_found")
    arn = user["Arn"]
    try:
        tags = {t["Key"]: t["Value"] for t in user["Tags"]} if "Tags" in user else iam.user_tags(name)
    except Exception as exc:  # fail closed: an unreadable tag set means "treat as protected"
        recorded(exc, f"ListUserTags {name}", "iam")  # a throttle is retried, a bug is raised
        tags = None
    reason = protected_reason(arn, tags, settings)
    if reason:
        journal.note("protected", arn, detail=reason)
        return _result(identity, arn, journal, "protection_unverified" if reason == UNVERIFIABLE else "protected",
                       reason=reason)

    with journal.step("attach_quarantine_policy", arn):
        if settings.quarantine_policy_arn in iam.attached_user_policies(name):
            journal.note("unchanged", arn, detail=f"{settings.quarantine_policy_arn} already attached")
        else:
            iam.attach_user_policy(name, settings.quarantine_policy_arn, target=arn)

    with journal.step("deactivate_access_keys", arn):
        keys = iam.access_keys(name)
        chosen = keys_to_deactivate(keys, identity.get("accessKeyId"), settings.key_scope)
        for key in keys:
            key_id = key["AccessKeyId"]
            if key_id not in chosen:
                journal.note("skipped", key_id, detail="not the finding's key (IR_KEY_SCOPE=named)")
            elif key.get("Status") == "Inactive":
                journal.note("unchanged", key_id, detail="already inactive")
            else:
                iam.deactivate_access_key(name, key_id, target=key_id)

    revoke(journal, arn, incident["cutoff"],
           read=lambda: iam.user_policy(name, REVOKE_POLICY_NAME),
           write=lambda doc: iam.put_user_policy(name, REVOKE_POLICY_NAME, doc, target=arn))
    return _result(identity, arn, journal, _changed_status(journal), cutoff=incident["cutoff"])


def keys_to_deactivate(keys: list[dict], named: str | None, scope: str) -> set[str]:
    """Which of the user's keys to deactivate. Pure."""
    ids = {k["AccessKeyId"] for k in keys}
    if scope == "named" and named in ids:
        return {named}
    return ids


def revoke(journal: Journal, target: str, cutoff: str, *, read: Callable[[], dict | None],
           write: Callable[[dict], None]) -> None:
    """Put AWSRevokeOlderSessions with `cutoff` unless an existing one already reaches as far (never move back)."""
    with journal.step("revoke_older_sessions", target):
        existing = revoke_cutoff(read())
        if covers(existing, cutoff):
            journal.note("unchanged", target, detail=f"sessions issued before {existing} already denied")
        else:
            write(revoke_older_sessions(cutoff))


def contain_role(iam: Iam, journal: Journal, identity: dict, incident: dict, settings: Settings) -> dict[str, Any]:
    name = identity["name"]
    role = iam.get_role(name)
    if role is None:
        journal.note("not_found", name, detail="no such IAM role in the account")
        return _result(identity, name, journal, "not_found")
    arn, path = role["Arn"], role.get("Path", "/")
    if path.startswith("/aws-service-role/"):
        journal.note("manual", arn, detail="service-linked role: IAM does not allow changing it")
        return _result(identity, arn, journal, "manual", manualSteps=MANUAL_STEPS["ServiceLinked"])
    if name.startswith("AWSReservedSSO_") or path.startswith("/aws-reserved/"):
        journal.note("manual", arn, detail="IAM Identity Center role: managed by Identity Center")
        return _result(identity, arn, journal, "manual", manualSteps=MANUAL_STEPS["SSO"])
    tags = {t["Key"]: t["Value"] for t in role.get("Tags", [])}
    reason = protected_reason(arn, tags, settings)
    if reason:
        journal.note("protected", arn, detail=reason)
        return _result(identity, arn, journal, "protection_unverified" if reason == UNVERIFIABLE else "protected",
                       reason=reason)
    revoke(journal, arn, incident["cutoff"],
           read=lambda: iam.role_policy(name, REVOKE_POLICY_NAME),
           write=lambda doc: iam.put_role_policy(name, REVOKE_POLICY_NAME, doc, target=arn))
    return _result(identity, arn, journal, _changed_status(journal), cutoff=incident["cutoff"])


def manual(journal: Journal, identity: dict) -> dict[str, Any]:
    kind = identity["type"] if identity["type"] in MANUAL_STEPS else "Other"
    target = identity.get("name") or identity["type"]
    journal.note("manual", target, detail=f"{identity['type']}: IAM cannot contain this identity automatically")
    return _result(identity, target, journal, "manual", manualSteps=MANUAL_STEPS[kind])


def contain(identity: dict, incident: dict, *, iam_for: Callable[[Journal], Iam], settings: Settings,
            dry_run: bool) -> dict[str, Any]:
    """Contain one identity of `incident`; `iam_for(journal)` gives the IAM adapter in the incident's account."""
    journal = Journal(dry_run=dry_run)
    if identity["type"] == "IAMUser":
        return contain_user(iam_for(journal), journal, identity, incident, settings)
    if identity["type"] == "AssumedRole":
        return contain_role(iam_for(journal), journal, identity, incident, settings)
    return manual(journal, identity)


def contain_all(incident: dict, *, iam_for: Callable[[Journal], Iam], settings: Settings) -> dict[str, Any]:
    """Contain every identity of the incident. An AWS error that is not transient fails only that identity
    (recorded); the others are still contained."""
    results = []
    for identity in incident.get("identities", []):
        try:
            results.append(contain(identity, incident, iam_for=iam_for, settings=settings,
                                   dry_run=bool(incident.get("dryRun"))))
        except Exception as exc:
            code = recorded(exc, f"identity {identity.get('name')}", "iam")
            journal = Journal()
            target = identity.get("name") or identity["type"]
            journal.note("failed", target, error=code, message=str(exc)[:400])
            results.append(_result(identity, target, journal, "failed"))
    return {"identities": results, "status": summarize([r["status"] for r in results])}


def summarize(statuses: list[str]) -> str:
    """One status for a list of per-target statuses, worst first."""
    for status in ("failed", "protection_unverified", "protected", "manual", "planned", "contained",
                   "already_contained", "not_found"):
        if status in statuses:
            return status
    return "nothing_to_do"
