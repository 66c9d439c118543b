"""Contain what the attacker minted (responder.attacker_plan's pivots), after the principal itself is contained.

Each pivot is **verified in AWS** before anything changes, passes the same protection gate as a finding's target
(responder.protection), honours the dry run, and reads before it writes (a second run changes nothing):

==============  =====================================================  ============================================
kind            verified by                                            action
==============  =====================================================  ============================================
assumed_role    GetRole: the role's ``RoleId`` is the one the          AWSRevokeOlderSessions with the incident's
                AssumeRole response named (a role deleted and           cut-off (the attacker holds those sessions);
                re-created under the name is another role)             another account's role: a manual step
created_key     GetAccessKeyLastUsed + ListAccessKeys: the key         the key deactivated (never deleted)
                exists, its owner, its ``CreateDate`` is the event's
created_user    GetUser: the ``UserId`` is the one CreateUser returned quarantined as a finding's user is
created_role    GetRole: the ``RoleId`` is the one CreateRole returned its sessions revoked; the trust policy to
                                                                       review is on the rotation list
login_profile   GetUser, GetLoginProfile (CreateLoginProfile: its      console access removed (DeleteLoginProfile,
                ``CreateDate`` is the event's)                         the profile's date recorded)
mfa_device      ListMFADevices: the serial is enabled on the user,     a manual step (the exact command): IAM
                its ``EnableDate`` is the event's                      cannot tell who holds the device, and
                                                                       deactivating one the owner uses locks the
                                                                       owner out
kms_grant       ListGrants (KeyId + GrantId): the grant exists, its    RevokeGrant where the key's policy lets the
                grantee is the event's                                 member role (else a manual step: the exact
                                                                       ``aws kms revoke-grant`` command); a key of
                                                                       another account: a manual step
==============  =====================================================  ============================================

A pivot whose verification fails is ``not_verified`` (nothing changed, the reason recorded); one whose target is
gone is ``not_found`` (nothing to contain). "The event's time" allows `CREATED_TOLERANCE` either way. At most
`BUDGET_SECONDS` are spent on pivots: the rest are ``skipped`` with the reason (the plan is in the record).
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable

from botocore.exceptions import ClientError

from responder.attacker_plan import _parse_time
from responder.errors import error_code, is_transient, recorded
from responder.identity import (_protection, _remove_console_access, _revoke_elsewhere_steps, contain_role,
                                contain_user)
from responder.journal import Journal
from responder.protection import protected_reason
from responder.settings import Settings

CREATED_TOLERANCE = timedelta(minutes=10)
BUDGET_SECONDS = 30.0
REFUSED = ("AccessDeniedException", "AccessDenied")


def _close(when: Any, event_time: Any) -> bool:
    a, b = _parse_time(when), _parse_time(event_time)
    return bool(a and b and abs(a - b) <= CREATED_TOLERANCE)


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else str(value or "")


def _out(pivot: dict, journal: Journal, status: str, action: str, *, command: str | None = None,
         **extra: Any) -> dict[str, Any]:
    if journal.failures and status not in ("manual",):
        status = "failed"
    elif status == "contained" and journal.dry_run:
        status = "planned"
    return {"kind": pivot["kind"], "target": pivot["target"], "account": pivot.get("account"),
            "eventId": pivot.get("eventId"), "eventName": pivot.get("eventName"),
            "eventTime": pivot.get("eventTime"), "action": action, "status": status,
            **({"command": command} if command else {}), **extra, "entries": journal.entries}


def _from_identity(pivot: dict, journal: Journal, result: dict, action: str, command: str | None = None) -> dict:
    """A pivot contained through the identity containment (user quarantine, role sessions)."""
    status = {"planned": "planned", "contained": "contained", "already_contained": "already_contained",
              "not_found": "not_verified"}.get(result.get("status"), result.get("status") or "failed")
    steps = result.get("manualSteps")
    return _out(pivot, journal, status, action if status in ("contained", "already_contained", "planned")
                else "none", command=command or (" && ".join(steps) if steps and len(steps) == 1 else None),
                **{k: result[k] for k in ("reason", "manualSteps") if result.get(k)})


def _user_gate(iam: Any, user: dict, incident: dict, settings: Settings, trail: Any) -> str | None:
    """The protection gate for a user the pivot acts on (tags unreadable: protected)."""
    try:
        tags = {t["Key"]: t["Value"] for t in user["Tags"]} if "Tags" in user else iam.user_tags(user["UserName"])
    except Exception as exc:  # fail closed
        recorded(exc, f"ListUserTags {user['UserName']}", "iam")
        tags = None
    reason, _ = _protection(user["Arn"], "user", user["UserName"], tags, incident, settings, trail)
    return reason


def created_key(iam: Any, journal: Journal, pivot: dict, incident: dict, settings: Settings, trail: Any) -> dict:
    key = pivot["target"]
    command = f"aws iam update-access-key --user-name {{user}} --access-key-id {key} --status Inactive"
    owner = iam.access_key_owner(key)
    user = iam.get_user(owner) if owner else None
    meta = next((k for k in iam.access_keys(user["UserName"]) if k["AccessKeyId"] == key), None) if user else None
    if meta is None:
        journal.note("not_found", key, detail="IAM knows no such key in this account (deleted)")
        return _out(pivot, journal, "not_found", "none", reason="no such access key (deleted)")
    name = user["UserName"]
    command = command.format(user=name)
    if not _close(meta.get("CreateDate"), pivot.get("eventTime")):
        why = f"key {key} was created {_iso(meta.get('CreateDate'))}, not at the event's time {pivot['eventTime']}"
        journal.note("not_verified", key, detail=why)
        return _out(pivot, journal, "not_verified", "none", reason=why, command=command)
    facts = {"userName": name} if name.lower() == str(pivot.get("userName")).lower() else {
        "userName": name, "findingName": pivot.get("userName")}
    reason = _user_gate(iam, user, incident, settings, trail)
    if reason:
        journal.note("protected", user["Arn"], detail=reason)
        return _out(pivot, journal, "protected", "none", reason=reason, command=command, **facts)
    with journal.step("deactivate_created_key", key):
        if meta.get("Status") == "Inactive":
            journal.note("unchanged", key, detail="already inactive")
        else:
            iam.deactivate_access_key(name, key, target=key)
    status = "contained" if journal.changes else "already_contained"
    return _out(pivot, journal, status, "deactivated", **facts)


def login_profile(iam: Any, journal: Journal, pivot: dict, incident: dict, settings: Settings, trail: Any) -> dict:
    name = pivot["userName"]
    command = f"aws iam delete-login-profile --user-name {name}"
    user = iam.get_user(name)
    if user is None:
        journal.note("not_found", pivot["target"], detail="no such user")
        return _out(pivot, journal, "not_found", "none", reason="no such user")
    profile = iam.login_profile(user["UserName"])
    if profile is None:
        journal.note("unchanged", user["Arn"], detail="no console password (no login profile)")
        return _out(pivot, journal, "already_contained", "console access removed")
    if pivot.get("eventName") == "CreateLoginProfile" and not _close(profile.get("CreateDate"), pivot["eventTime"]):
        why = (f"the login profile was created {_iso(profile.get('CreateDate'))}, not by this event "
               f"({pivot['eventTime']}): someone set it again since")
        journal.note("not_verified", user["Arn"], detail=why)
        return _out(pivot, journal, "not_verified", "none", reason=why, command=command)
    reason = _user_gate(iam, user, incident, settings, trail)
    if reason:
        journal.note("protected", user["Arn"], detail=reason)
        return _out(pivot, journal, "protected", "none", reason=reason, command=command)
    found = _remove_console_access(iam, journal, user["UserName"], user["Arn"])
    return _out(pivot, journal, "contained" if journal.changes else "already_contained", "console access removed",
                loginProfile=found)


def mfa_device(iam: Any, journal: Journal, pivot: dict, incident: dict, settings: Settings, trail: Any) -> dict:
    name, serial = pivot["userName"], pivot["target"]
    command = f"aws iam deactivate-mfa-device --user-name {name} --serial-number {serial}"
    device = next((d for d in iam.mfa_devices(name) if d.get("SerialNumber") == serial), None)
    if device is None:
        journal.note("unchanged", serial, detail=f"not enabled on user {name}")
        return _out(pivot, journal, "already_contained", "none", reason=f"the device is not enabled on {name}")
    if not _close(device.get("EnableDate"), pivot.get("eventTime")):
        why = f"enabled {_iso(device.get('EnableDate'))}, not by this event ({pivot['eventTime']})"
        journal.note("not_verified", serial, detail=why)
        return _out(pivot, journal, "not_verified", "none", reason=why, command=command)
    why = ("an MFA device the attacker enabled: confirm with the user that it is not theirs, then deactivate it "
           "(IAM cannot tell who holds a device)")
    journal.note("manual", serial, detail=why)
    return _out(pivot, journal, "manual", "manual step", reason=why, command=command)


def kms_grant(kms: Any, journal: Journal, pivot: dict, incident: dict, settings: Settings) -> dict:
    key_arn, grant_id, region = pivot["keyArn"], pivot["grantId"], pivot.get("region") or incident["region"]
    command = f"aws kms revoke-grant --key-id {key_arn} --grant-id {grant_id} --region {region}"
    target = pivot["target"]
    if pivot.get("account") != incident.get("accountId"):
        why = f"the key is in account {pivot.get('account')}: revoke the grant there"
        journal.note("manual", target, detail=why)
        return _out(pivot, journal, "manual", "manual step", reason=why, command=command)
    try:
        grant = kms.grant(key_arn, grant_id)
    except ClientError as exc:
        if error_code(exc) not in REFUSED or is_transient(exc, "kms"):
            raise
        why = f"the key's policy does not let the member role read its grants ({error_code(exc)})"
        journal.note("manual", target, detail=why)
        return _out(pivot, journal, "manual", "manual step", reason=why, command=command)
    if grant is None:
        journal.note("unchanged", target, detail="the key has no such grant (revoked or retired)")
        return _out(pivot, journal, "already_contained", "revoked")
    grantee = grant.get("GranteePrincipal")
    if pivot.get("grantee") and grantee != pivot["grantee"] or (
            grant.get("CreationDate") and not _close(grant["CreationDate"], pivot.get("eventTime"))):
        why = f"the grant on the key is for {grantee}, created {_iso(grant.get('CreationDate'))}: not this event's"
        journal.note("not_verified", target, detail=why)
        return _out(pivot, journal, "not_verified", "none", reason=why, command=command)
    reason = protected_reason(grantee, {}, settings, account=incident.get("accountId"),
                              partition=incident.get("partition") or "aws") if grantee else None
    if reason:
        journal.note("protected", target, detail=reason)
        return _out(pivot, journal, "protected", "none", reason=reason, command=command)
    try:
        with journal.step("revoke_grant", target):
            try:
                kms.revoke_grant(key_arn, grant_id, target=target)
            except ClientError as exc:
                if error_code(exc) in REFUSED:
                    journal.entries[-1]["status"] = "refused"
                    raise _Refused(error_code(exc)) from exc
                raise
    except _Refused as exc:
        why = f"the key's policy does not let the member role revoke grants ({exc}): revoke it by hand"
        journal.note("manual", target, detail=why)
        return _out(pivot, journal, "manual", "manual step", reason=why, command=command)
    return _out(pivot, journal, "contained", "revoked", grantee=grantee)


class _Refused(Exception):
    """RevokeGrant refused by the key policy: a manual step, not a failure (raised past Journal.step)."""


def minted(settings: Settings) -> Settings:
    """The protection gate for a user or role the compromised principal itself created in the window (its id
    verified): a name matching a protected pattern protects nothing - the attacker chose the name. The responder's
    own roles (exact ARNs), a protection configuration error (fail closed) and the protection tag (checked in
    CloudTrail: a tag the principal set in the window is void) still apply."""
    return replace(settings, protected_principals=())


def follow(pivot: dict, incident: dict, *, iam_for: Callable[[Journal], Any], kms_for: Callable[[str, Journal], Any],
           settings: Settings, trail: Any, dry_run: bool) -> dict[str, Any]:
    """Verify and contain one pivot."""
    journal = Journal(dry_run=dry_run)
    kind = pivot["kind"]
    if kind in ("assumed_role", "created_role"):
        if pivot.get("account") != incident.get("accountId"):
            steps = _revoke_elsewhere_steps(pivot["target"], incident["cutoff"])
            journal.note("manual", pivot["target"], detail=steps[0])
            return _out(pivot, journal, "manual", "manual step", reason=steps[0], command=steps[1].split(": ", 1)[1])
        identity = {"type": "AssumedRole", "name": pivot["roleName"],
                    "principalId": pivot["roleId"] + (":pivot" if kind == "assumed_role" else "")}
        result = contain_role(iam_for(journal), journal, identity, incident,
                              minted(settings) if kind == "created_role" else settings, trail)
        command = (f"aws iam get-role --role-name {pivot['roleName']} (review the trust policy the attacker wrote; "
                   "delete the role once the evidence is kept)") if kind == "created_role" else None
        return _from_identity(pivot, journal, result, "older sessions revoked", command)
    if kind == "created_user":
        identity = {"type": "IAMUser", "name": pivot["userName"], "principalId": pivot["userId"]}
        result = contain_user(iam_for(journal), journal, identity, incident, minted(settings), trail)
        return _from_identity(pivot, journal, result, "quarantined")
    if kind == "created_key":
        return created_key(iam_for(journal), journal, pivot, incident, settings, trail)
    if kind == "login_profile":
        return login_profile(iam_for(journal), journal, pivot, incident, settings, trail)
    if kind == "mfa_device":
        return mfa_device(iam_for(journal), journal, pivot, incident, settings, trail)
    return kms_grant(kms_for(pivot.get("region") or incident["region"], journal), journal, pivot, incident, settings)


def follow_all(pivots: list[dict], incident: dict, *, iam_for: Callable[[Journal], Any],
               kms_for: Callable[[str, Journal], Any], settings: Settings, trail: Any,
               monotonic: Callable[[], float] = time.monotonic, budget: float = BUDGET_SECONDS) -> list[dict]:
    """Follow every pivot (oldest first). A non-transient AWS error fails that pivot only (recorded)."""
    dry_run = bool(incident.get("dryRun"))
    deadline = monotonic() + budget
    results = []
    for pivot in pivots:
        if monotonic() > deadline:
            journal = Journal()
            why = f"pivot time budget ({budget:.0f} s) spent"
            journal.note("skipped", pivot["target"], detail=why)
            results.append(_out(pivot, journal, "skipped", "none", reason=why))
            continue
        try:
            results.append(follow(pivot, incident, iam_for=iam_for, kms_for=kms_for, settings=settings,
                                  trail=trail, dry_run=dry_run))
        except Exception as exc:
            code = recorded(exc, f"pivot {pivot['kind']} {pivot['target']}")  # transient: raised (task retried)
            journal = Journal()
            journal.note("failed", pivot["target"], error=code, message=str(exc)[:400])
            results.append(_out(pivot, journal, "failed", "none", error=code))
    return results


def summary(results: list[dict], limit: int = 3) -> dict[str, Any]:
    """The pivots as the task's output carries them: counts by status and the first few (the record has all)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"count": len(results), "statuses": counts,
            "items": [{k: r.get(k) for k in ("kind", "target", "status", "eventId") if r.get(k)}
                      for r in results[:limit]]}


def record_form(results: list[dict]) -> list[dict]:
    """The record's ``pivots`` (contract fields; the journal entries go to the timeline)."""
    return [json.loads(json.dumps({k: v for k, v in r.items() if k != "entries"}, default=str)) for r in results]


# -- the whole step (the identity task runs it after containing the incident's principals) ---------------------
def events_for(identity: dict, incident: dict, captured: dict[str, list], cloudtrail_for: Callable[[str], Any] | None,
               ) -> tuple[list[dict], str]:
    """(the principal's events, where from): the scope capture's (responder.scope); in a dry run, or when the
    capture found none to store, the same lookups made here (reads only, the same bounds)."""
    from responder.scope import MAX_PAGES, _parse, lookup_for, lookup_regions, principal_label, window

    label = principal_label(identity)
    if captured.get(label):
        return captured[label], "capture"
    lookup = lookup_for(identity)
    if lookup is None or cloudtrail_for is None:
        return [], "none"
    span = incident.get("window") or window(incident["cutoff"])
    events: list[dict] = []
    for region in lookup_regions(incident):
        events += cloudtrail_for(region).lookup(lookup[0], lookup[1], start=_parse(span["start"]),
                                                end=_parse(span["end"]), max_pages=MAX_PAGES)["events"]
    return events, "lookup"


def run(incident: dict, *, captured: dict[str, list], identities: list[dict], iam_for: Callable[[Journal], Any],
        kms_for: Callable[[str, Journal], Any], settings: Settings, trail: Any,
        cloudtrail_for: Callable[[str], Any] | None, monotonic: Callable[[], float] = time.monotonic,
        time_left: Callable[[], float] | None = None) -> dict:
    """Derive every principal's pivots and reads, contain the pivots, build the rotation list. Returns
    ``{"pivots": [results], "rotation": {"items", "incomplete", "calls"}, "plans": [per principal counts]}``.
    `time_left()`: seconds the task may still spend; the pivots get at most `BUDGET_SECONDS` and 60 % of it, the
    rotation list at most its own budget of what remains."""
    from responder import attacker_plan, rotation
    from responder.errors import best_effort

    pivots_found, reads, plans = [], [], []
    for identity in incident.get("identities") or []:
        try:
            events, source = events_for(identity, incident, captured, cloudtrail_for)
        except Exception as exc:  # CloudTrail unreadable: no plan for this principal (recorded), never a failure
            if not best_effort(exc):
                raise
            plans.append({"principal": identity.get("name"), "error": error_code(exc)})
            continue
        plan = attacker_plan.derive(events, incident, identity)
        plans.append({"principal": identity.get("name"), "source": source, "examined": plan["examined"],
                      "pivots": len(plan["pivots"]), "reads": len(plan["reads"]),
                      **({"dropped": plan["dropped"]} if plan["dropped"] else {}),
                      **({"leftOut": plan["leftOut"]} if any(plan["leftOut"].values()) else {})})
        seen = {(p["kind"], p["target"]) for p in pivots_found}
        pivots_found += [p for p in plan["pivots"] if (p["kind"], p["target"]) not in seen]
        reads += plan["reads"]
    pivots_found = pivots_found[:attacker_plan.MAX_PIVOTS]
    def left() -> float:
        return max(0.0, time_left()) if time_left else float("inf")

    results = follow_all(pivots_found, incident, iam_for=iam_for, kms_for=kms_for, settings=settings, trail=trail,
                         monotonic=monotonic, budget=min(BUDGET_SECONDS, left() * 0.6))
    listed = rotation.build(incident, identities=identities, pivots=results, reads=reads,
                            iam=iam_for(Journal(dry_run=True)),
                            kms_for=lambda region: kms_for(region, Journal(dry_run=True)), monotonic=monotonic,
                            budget=min(rotation.BUDGET_SECONDS, left()))
    return {"pivots": results, "rotation": listed, "plans": plans}
