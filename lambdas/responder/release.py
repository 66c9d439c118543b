"""Release: undo this responder's containment of named targets of an incident, from what it recorded, on request only.

A manual request ``{"release": {...}}`` (README, "Start an execution by hand") names an incident and the targets to
release. Nothing is ever released automatically: only this request reaches the Release task.

**The saved pre-state is the incident record.** Every change containment made went through the journal
(responder.journal) and sits in the record's ``results`` (``identity:<arn>``: the target's result with its entries):
the quarantine policy *it* attached (``iam:AttachUserPolicy`` done), the keys *it* deactivated (``iam:UpdateAccessKey``
done: each was ``Active`` before, or containment would have left it alone), the inline deny-all *it* put. A release
undoes exactly those changes and nothing else: a key that was already inactive, a policy attached by someone else,
stay as they are.

**Refused, naming the target, when the target changed since containment** in a way a release would clobber: the
user is gone or is another user (``UserId``), a key it deactivated is deleted or active again, the quarantine policy it
attached was detached, its inline deny-all was removed or rewritten. Every target is checked before anything
changes: one refusal and nothing at all is released (``release_refused``).

**Never undone**: the ``AWSRevokeOlderSessions`` deny (it denies only credentials issued before the incident's
cut-off; a released principal's new sessions and its long-term keys are unaffected, and the sessions it revoked stay
revoked: they cannot be restored), evidence (snapshots, forensics copies, manifests), termination protection.
Console access (the deleted login profile) is not restored by this version: the result says how to restore it.

A second release finds nothing left to undo and changes nothing (``already_released``). A dry run plans every call.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from responder.errors import InvalidInput
from responder.journal import Journal, StepFailed
from responder.settings import DENY_ALL_POLICY_NAME

Iam = Any  # responder.aws.iam.Iam on the release role's client, built by the handler

KEYS = {"incidentId", "reason", "iamUsers", "roles", "instances", "restoreConsoleAccess", "restoreAutoScaling",
        "dryRun"}
MAX_TARGETS = 50
_A = re.ASCII
_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", _A)
_IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}", _A)
_INSTANCE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?", _A)
SUPPORTED = ("iamUsers",)  # this version releases IAM users; roles and instances are refused up front


# -- the request ----------------------------------------------------------------------------------------------
def parse(request: Any, *, string: Callable[..., str], target_names: Callable[..., list[str]],
          now_fields: dict[str, str]) -> dict[str, Any]:
    """The release request as an incident (disposition ``release``), or InvalidInput naming the field. Nothing is
    read or changed here; the record check (`with_record`) follows in Triage. `string` and `target_names` are
    Triage's checks of one string and of a list of target names."""
    p = "release."
    if not isinstance(request, dict):
        raise InvalidInput("release", f"must be an object, got {type(request).__name__}")
    unknown = sorted(set(request) - KEYS)
    if unknown:
        raise InvalidInput(f"{p}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(KEYS))})")
    if request.get("incidentId") is None:
        raise InvalidInput(f"{p}incidentId", "is required")
    incident_id = string(request["incidentId"], f"{p}incidentId", _INCIDENT_ID)
    if request.get("reason") is None:
        raise InvalidInput(f"{p}reason", "is required")
    reason = string(request["reason"], f"{p}reason", max_len=1024)
    flags = {}
    for key in ("dryRun", "restoreConsoleAccess", "restoreAutoScaling"):
        value = request.get(key, False)
        if not isinstance(value, bool):
            raise InvalidInput(f"{p}{key}", "must be true or false")
        flags[key] = value

    def names(key: str, pattern: re.Pattern) -> list[str]:
        return target_names(request, key, pattern, p)

    targets = {"iamUsers": names("iamUsers", _IAM_NAME), "roles": names("roles", _IAM_NAME),
               "instances": names("instances", _INSTANCE)}
    if not any(targets.values()):
        raise InvalidInput(f"{p}iamUsers", "name at least one target in iamUsers, roles or instances")
    for key in ("roles", "instances"):
        if targets[key]:
            raise InvalidInput(f"{p}{key}", "this version of the responder releases IAM users only")
    for key in ("restoreConsoleAccess", "restoreAutoScaling"):
        if flags[key]:
            raise InvalidInput(f"{p}{key}", "not supported by this version of the responder (see the README, "
                                            "'What a release cannot restore')")
    return {"incidentId": incident_id, "origin": "release", "disposition": "release", "dispositionReason": "",
            "reason": reason, "dryRun": flags["dryRun"], "identities": [], "instances": [],
            "release": {**targets, "restoreConsoleAccess": flags["restoreConsoleAccess"],
                        "restoreAutoScaling": flags["restoreAutoScaling"]}, **now_fields}


def user_results(record: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{user name: its identity result} for the IAM users this incident's containment acted on."""
    out: dict[str, dict[str, Any]] = {}
    for key, result in ((record or {}).get("results") or {}).items():
        if (isinstance(result, dict) and key.startswith("identity:") and result.get("type") == "IAMUser"
                and result.get("name") and ":user/" in str(result.get("target") or "")):
            out[str(result["name"])] = result
    return out


def with_record(incident: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """The request checked against the incident's record: the incident exists and its containment acted on each
    named target (InvalidInput naming the target otherwise); account, region and partition come from the record."""
    incident_id = incident["incidentId"]
    if not record:
        raise InvalidInput("release.incidentId", f"no incident {incident_id} in the incident table")
    for key in ("accountId", "region"):
        if not record.get(key):
            raise InvalidInput("release.incidentId", f"the record of {incident_id} has no {key}")
    users = user_results(record)
    for i, name in enumerate(incident["release"]["iamUsers"]):
        if name not in users:
            raise InvalidInput(f"release.iamUsers[{i}]", f"user {name} was not contained by incident {incident_id}")
    return dict(incident, accountId=record["accountId"], region=record["region"],
                partition=record.get("partition") or "aws", cutoff=record.get("cutoff") or incident.get("cutoff"))


# -- what containment did, what to undo (pure) --------------------------------------------------------------------
def containment_entries(record: dict[str, Any] | None, arn: str) -> list[dict[str, Any]]:
    """The identity task's timeline entries about `arn` (its ``subject``), every execution of the incident."""
    return [e for e in (record or {}).get("timeline") or [] if isinstance(e, dict) and e.get("task") == "identity"
            and e.get("subject") == arn]


def user_changes(result: dict[str, Any], entries: list[dict[str, Any]], quarantine_policy_arn: str) -> dict[str, Any]:
    """What containment changed on the user, from its recorded timeline entries: ``{"quarantinePolicy": arn |
    None, "keys": [ids it deactivated], "denyAll": bool, "loginProfile": {...} | None}``."""
    entries = [e for e in entries if isinstance(e, dict) and e.get("status") == "done"]
    keys = [str(e["target"]) for e in entries if e.get("api") == "iam:UpdateAccessKey" and e.get("target")]
    attached = any(e.get("api") == "iam:AttachUserPolicy" for e in entries)
    deny_all = any(e.get("api") == "iam:PutUserPolicy" and e.get("step") == "deny_all_inline" for e in entries)
    removed = any(e.get("api") == "iam:DeleteLoginProfile" for e in entries)
    return {"quarantinePolicy": quarantine_policy_arn if attached else None, "keys": list(dict.fromkeys(keys)),
            "denyAll": deny_all, "loginProfile": result.get("loginProfile") if removed else None}


def user_plan(changes: dict[str, Any], *, user: dict | None, user_id: str | None, attached: set[str],
              keys: dict[str, str], deny_all: dict | None, denies_all: Callable[[dict | None], bool],
              released: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """(conflicts, steps) for one user. Pure: `user` as IAM reads it now (None: gone), `user_id` the recorded one,
    `attached` its managed policy ARNs, `keys` {id: status}, `deny_all` the inline deny-all document now, `released`
    whether an earlier release of this incident already undid the changes (its entries)."""
    conflicts: list[str] = []
    steps: list[tuple[str, str]] = []
    if user is None:
        return ["the user no longer exists"], []
    if user_id and user.get("UserId") != user_id:
        return [f"the user was recreated since containment (UserId {user.get('UserId')} is not {user_id})"], []
    policy = changes["quarantinePolicy"]
    if policy:
        if policy in attached:
            steps.append(("detach", policy))
        elif not released:
            conflicts.append(f"{policy} was detached since containment")
    for key in changes["keys"]:
        status = keys.get(key)
        if status is None:
            conflicts.append(f"access key {key} was deleted since containment")
        elif status == "Inactive":
            steps.append(("activate", key))
        elif not released:
            conflicts.append(f"access key {key} was reactivated since containment")
    if changes["denyAll"]:
        if deny_all is not None and denies_all(deny_all):
            steps.append(("delete_inline", DENY_ALL_POLICY_NAME))
        elif deny_all is not None:
            conflicts.append(f"the inline {DENY_ALL_POLICY_NAME} was changed since containment")
        elif not released:
            conflicts.append(f"the inline {DENY_ALL_POLICY_NAME} was deleted since containment")
    return conflicts, steps


def released_before(record: dict[str, Any] | None, arn: str) -> bool:
    """Did an earlier release of this incident undo changes on `arn`? (its result in the record's ``results``,
    ``release:<execution>``, or its ``release`` timeline entries)"""
    for key, value in ((record or {}).get("results") or {}).items():
        if key.startswith("release:") and isinstance(value, dict) and any(
                isinstance(t, dict) and t.get("target") == arn and t.get("status") == "released"
                for t in value.get("targets") or []):
            return True
    return any(isinstance(e, dict) and e.get("task") == "release" and e.get("status") == "done"
               and e.get("subject") == arn for e in (record or {}).get("timeline") or [])


# -- the task -----------------------------------------------------------------------------------------------------
def release(incident: dict[str, Any], *, record: dict[str, Any] | None, iam: Callable[[Journal], Iam],
            quarantine_policy_arn: str, denies_all: Callable[[dict | None], bool],
            journal: Callable[[], Journal]) -> dict[str, Any]:
    """Check every named target, then (only when none conflicts) undo what containment changed. Returns
    ``{"status", "targets": [{"target", "name", "status", "conflicts"?, "entries", "kept"}]}``; status is
    ``released``, ``planned`` (dry run), ``already_released``, ``refused`` or ``failed``."""
    users = user_results(record)
    checked: list[dict[str, Any]] = []
    reader = iam(Journal())
    for name in incident["release"]["iamUsers"]:
        result = users[name]
        arn = str(result["target"])
        changes = user_changes(result, containment_entries(record, arn), quarantine_policy_arn)
        user = reader.get_user(name)
        keys = {k["AccessKeyId"]: k.get("Status") for k in reader.access_keys(name)} if user else {}
        attached = reader.attached_user_policies(name) if user else set()
        deny_all = reader.user_policy(name, DENY_ALL_POLICY_NAME) if user and changes["denyAll"] else None
        conflicts, steps = user_plan(changes, user=user, user_id=result.get("userId"), attached=attached, keys=keys,
                                     deny_all=deny_all, denies_all=denies_all, released=released_before(record, arn))
        if (record or {}).get("timelineOmitted"):  # the saved pre-state may be incomplete: fail closed
            conflicts.append("the incident record's timeline is incomplete (timelineOmitted): release by hand from "
                             "the manifest")
        checked.append({"target": arn, "name": name, "conflicts": conflicts, "steps": steps, "changes": changes})

    kept = ["AWSRevokeOlderSessions (sessions issued before the cut-off stay revoked)"]
    if any(c["conflicts"] for c in checked):
        return {"status": "refused", "targets": [
            {"target": c["target"], "name": c["name"], "status": "refused" if c["conflicts"] else "not_released",
             "conflicts": c["conflicts"], "entries": []} for c in checked]}
    out: list[dict[str, Any]] = []
    for c in checked:
        j = journal()
        client = iam(j)
        name, arn = c["name"], c["target"]
        with j.step("release_user", arn):
            for kind, what in c["steps"]:
                if kind == "detach":
                    client.detach_user_policy(name, what, target=arn)
                elif kind == "activate":
                    client.activate_access_key(name, what, target=what)
                elif kind == "delete_inline":
                    client.delete_user_policy(name, what, target=arn)
                else:  # pragma: no cover - user_plan makes only the kinds above
                    raise StepFailed("UnknownStep", kind)
        status = ("failed" if j.failures else "planned" if j.dry_run and j.changes else
                  "released" if j.changes else "already_released")
        item = {"target": arn, "name": name, "status": status, "entries": j.entries, "kept": kept}
        if c["changes"]["loginProfile"]:
            item["consoleAccess"] = ("not restored: the login profile was removed at containment; restore it with "
                                     f"aws iam create-login-profile --user-name {name} --password-reset-required "
                                     "--password <a new password>")
        out.append(item)
    statuses = [t["status"] for t in out]
    for status in ("failed", "planned", "released"):
        if status in statuses:
            return {"status": status, "targets": out}
    return {"status": "already_released", "targets": out}


OUTCOMES = {"released": "released", "planned": "release_planned", "already_released": "already_released",
            "refused": "release_refused", "failed": "release_failed"}
FAILING = {"release_refused": "ReleaseRefused", "release_failed": "ReleaseFailed"}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The result as the state carries it: status and per target its status, conflicts and counts (bounded)."""
    return {"status": result["status"], "targets": [
        {k: v for k, v in {"target": t["target"], "name": t.get("name"), "status": t["status"],
                           "conflicts": (t.get("conflicts") or [])[:5] or None,
                           "changes": sum(1 for e in t.get("entries") or [] if e.get("status") in ("done", "planned")),
                           "consoleAccess": t.get("consoleAccess")}.items() if v is not None}
        for t in result["targets"][:MAX_TARGETS]]}


def outcome(state: dict[str, Any]) -> dict[str, Any]:
    """The execution's outcome for a release request (responder.outcome.decide)."""
    incident = state.get("incident") or {}
    failure = state.get("failure")
    result = (state.get("release") or {}).get("summary") or {}
    name = "release_failed" if failure or not result else OUTCOMES.get(result.get("status"), "release_failed")
    error = FAILING.get(name)
    cause = None
    if error:
        parts = [f"incident {incident.get('incidentId', '?')}"]
        if failure:
            parts.append(f"{failure.get('task')}: {failure.get('error')}: {str(failure.get('cause'))[:300]}")
        parts += [f"{t['target']}: {'; '.join(t['conflicts'])}" for t in result.get("targets") or []
                  if t.get("conflicts")][:5]
        parts.append("nothing was released" if name == "release_refused" else "see the incident record")
        cause = "; ".join(parts)[:1000]
    return {"outcome": name, "fail": error is not None, "error": error, "cause": cause}


def manifest_keys(incident_id: str, execution_name: str, count: int) -> list[str]:
    """The write-once names of a release's manifest (beside the attempts' manifests, same prefix)."""
    from responder.manifest import prefix

    base = f"{prefix(incident_id)}-release-{execution_name[:80]}"
    return [base + (f"-{n}" if n > 1 else "") + ".json" for n in range(1, count + 1)]
