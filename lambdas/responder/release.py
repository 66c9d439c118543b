"""Release: undo this responder's containment of named targets of an incident, from what it recorded, on request only.

A manual request ``{"release": {...}}`` (README, "Start an execution by hand") names an incident and the targets to
release: ``iamUsers``, ``roles``, ``instances``. Nothing is ever released automatically: only this request reaches
the Release task.

**The saved pre-state is the incident record.** Every change containment made went through the journal
(responder.journal): its timeline entries (``done``) say what *this responder* changed, and the targets' results in
``results`` what was there before.

* An IAM user (``identity:<arn>``): the quarantine policy *it* attached (``iam:AttachUserPolicy`` done), the keys
  *it* deactivated (``iam:UpdateAccessKey`` done: each was ``Active`` before, or containment would have left it
  alone), the inline deny-all *it* put, the login profile it deleted (restored with a new password only when the
  request says ``restoreConsoleAccess``: the password goes into a secret of the responder's account, nowhere else).
* An instance (``isolation:<id>``): the groups of each interface and the profile as they were (``metadata``), the
  network ACL deny entries it added (``networkAclEntries``), the quarantine group per VPC, the load-balancer
  registrations with their ports and the Auto Scaling group it detached from (``preState``); Auto Scaling membership
  comes back only when the request says ``restoreAutoScaling``.
* A role: its containment is only the ``AWSRevokeOlderSessions`` deny, which a release keeps: accepted, recorded,
  nothing to undo (``nothing_to_release``).

A release undoes exactly those changes and nothing else: a key that was already inactive, a policy attached by
someone else, a registration the instance still has, stay as they are.

**Refused, naming the target, when the target changed since containment** in a way a release would clobber: the
user is gone or is another user (``UserId``), a key it deactivated is deleted or active again, the quarantine policy it
attached was detached, its inline deny-all was removed or rewritten, the user has a login profile again; the
instance is gone, an interface was added or removed or is not in exactly the quarantine group, the profile is not the
deny-all profile, a NACL entry at one of its rule numbers is not its deny, a load balancer or group is gone. Also when
the record cannot tell the pre-state exactly (timeline incomplete, result truncated, metadata captured after the
isolation). Every target is checked before anything changes: one refusal and nothing at all is released
(``release_refused``).

**Never undone**: the ``AWSRevokeOlderSessions`` deny (it denies only credentials issued before the incident's
cut-off; a released principal's new sessions and its long-term keys are unaffected, and the sessions it revoked stay
revoked: they cannot be restored), evidence (snapshots, forensics copies, manifests), termination protection and the
other evidence settings of an instance, the quarantine groups, the responder's tags.

A second release finds nothing left to undo and changes nothing (``already_released``). A dry run plans every call.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import string as _string
from typing import Any, Callable

from responder.errors import InvalidInput
from responder.journal import Journal, StepFailed
from responder.settings import DENY_ALL_POLICY_NAME, RELEASE_SECRET_PREFIX

Iam = Any  # responder.aws.iam.Iam on the release role's client, built by the handler

KEYS = {"incidentId", "reason", "iamUsers", "roles", "instances", "restoreConsoleAccess", "restoreAutoScaling",
        "dryRun"}
MAX_TARGETS = 50
_A = re.ASCII
_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", _A)
_IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}", _A)
_INSTANCE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?", _A)


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
    if flags["restoreAutoScaling"] and not targets["instances"]:
        raise InvalidInput(f"{p}restoreAutoScaling", "applies to instances only: name them in instances")
    if flags["restoreConsoleAccess"] and not targets["iamUsers"]:
        raise InvalidInput(f"{p}restoreConsoleAccess", "applies to IAM users only: name them in iamUsers")
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


def role_results(record: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{role name: its identity result} for the IAM roles this incident's containment acted on."""
    out: dict[str, dict[str, Any]] = {}
    for key, result in ((record or {}).get("results") or {}).items():
        if (isinstance(result, dict) and key.startswith("identity:") and result.get("type") == "AssumedRole"
                and result.get("name") and ":role/" in str(result.get("target") or "")):
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
    roles = role_results(record)
    for i, name in enumerate(incident["release"]["roles"]):
        if name not in roles:
            raise InvalidInput(f"release.roles[{i}]", f"role {name} was not contained by incident {incident_id}")
    instances = instance_results(record)
    for i, instance_id in enumerate(incident["release"]["instances"]):
        if instance_id not in instances:
            raise InvalidInput(f"release.instances[{i}]",
                               f"instance {instance_id} was not isolated by incident {incident_id}")
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


# -- console access (restoreConsoleAccess) -----------------------------------------------------------------------
# IAM's password characters (IAM user guide, "Setting an account password policy"): upper and lower case letters,
# digits and these symbols. 32 characters with each class: above any minimum length a typical policy sets.
PASSWORD_SYMBOLS = "!@#$%^&*()_+-=[]{}|'"
PASSWORD_LENGTH = 32
PLANNED_PASSWORD = "<a new random password, generated when the release runs>"


def new_password(length: int = PASSWORD_LENGTH) -> str:
    """A random console password (`secrets`): every character class, `length` characters."""
    classes = (_string.ascii_uppercase, _string.ascii_lowercase, _string.digits, PASSWORD_SYMBOLS)
    chars = [secrets.choice(c) for c in classes]
    chars += [secrets.choice("".join(classes)) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def secret_name(incident_id: str, account: str, user: str) -> str:
    """The secret of one user's restored password: <prefix><incident>/<account>/<user> (Secrets Manager names take
    letters, digits and /_+=.@-: an IAM name's comma becomes a dash, and the name then ends in 8 hex digits of the
    user name's SHA-256, so that users `a,b` and `a-b` never share a secret)."""
    safe = user.replace(",", "-")
    if safe != user:
        safe += "-" + hashlib.sha256(user.encode()).hexdigest()[:8]
    return f"{RELEASE_SECRET_PREFIX}{incident_id}/{account}/{safe}"


def console_restored_before(record: dict[str, Any] | None, arn: str) -> bool:
    """Did an earlier release of this incident create the user's login profile (its done CreateLoginProfile)?"""
    return any(isinstance(e, dict) and e.get("task") == "release" and e.get("status") == "done"
               and e.get("api") == "iam:CreateLoginProfile" and e.get("subject") == arn
               for e in (record or {}).get("timeline") or [])


def console_plan(changes: dict[str, Any], *, profile: dict | None, restored_before: bool) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(conflicts, steps, notes) of restoreConsoleAccess for one user. Pure: `profile` the login profile now."""
    if not (changes.get("loginProfile") or {}).get("existed"):
        return [], [], ["console access: containment removed no login profile (the user had none): nothing to "
                        "restore"]
    if profile is None:
        return [], [("console", "")], []
    if restored_before:
        return [], [], []
    return ["the user has a login profile again since containment (restored by hand?): a release would replace "
            "its password"], [], []


def release_completed(record: dict[str, Any] | None, arn: str) -> str | None:
    """The execution of an earlier release of this incident that released `arn` completely (its result in the
    record's ``results``, target status ``released``), or None. What is contained on `arn` after it is another
    containment's (a later incident's), not this incident's to undo: a further release of this incident changes
    nothing on it. (A release that failed part-way is not complete: released_before lets it be finished.)"""
    for key, value in ((record or {}).get("results") or {}).items():
        if key.startswith("release:") and isinstance(value, dict) and any(
                isinstance(t, dict) and t.get("target") == arn and t.get("status") == "released"
                for t in value.get("targets") or []):
            return key.split(":", 1)[1]
    return None


COMPLETED_NOTE = ("an earlier release of this incident ({}) released it completely: what is contained now is a later "
                  "containment's, not this incident's to undo")


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


# -- instances: what the isolation did, what to undo (pure) -------------------------------------------------------
INCIDENT_TAG, LATER_INCIDENTS_TAG = "ir:incident", "ir:incidents"  # as responder.isolation tags them


def made_since(created: Any, entries: list[dict[str, Any]]) -> bool:
    """Was a resource (its IAM ``CreateDate``) created after the isolation's first entry about the instance? Then
    it is not the one the instance had. Unknown dates count as made since (fail closed)."""
    from datetime import datetime, timezone

    def when(value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    first = min(filter(None, (when(e.get("time")) for e in entries if isinstance(e, dict))), default=None)
    made = when(created)
    return first is None or made is None or made > first


def other_incidents(instance: dict | None, incident_id: str) -> list[str]:
    """The incidents other than `incident_id` the instance's tags name (the first in ``ir:incident``, later ones,
    space-separated, in ``ir:incidents``): each found the instance isolated and relies on that isolation."""
    tags = {t.get("Key"): str(t.get("Value") or "") for t in (instance or {}).get("Tags") or [] if isinstance(t, dict)}
    named = [tags.get(INCIDENT_TAG, "")] + tags.get(LATER_INCIDENTS_TAG, "").split()
    return [i for i in dict.fromkeys(x.strip() for x in named) if i and i != incident_id]
GONE_STATES = ("shutting-down", "terminated")
ACL_TARGET = re.compile(r"(acl-[0-9a-f]+)#([0-9]{1,5})-(in|out)", _A)
INSTANCE_KEPT = ["termination protection, shutdown behaviour 'stop' and DeleteOnTermination off (evidence)",
                 "the quarantine and untrack security groups (shared by every isolated instance of the VPC)",
                 "connection-tracking timeouts at their minimum", "the ir:incident / ir:quarantine tags",
                 "snapshots, forensics copies and the metadata capture (evidence)",
                 "AWSRevokeOlderSessions on the instance profile's role (sessions issued before the cut-off stay "
                 "revoked)"]


def instance_results(record: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{instance id: its isolation result} for the instances this incident's containment acted on."""
    out: dict[str, dict[str, Any]] = {}
    for key, result in ((record or {}).get("results") or {}).items():
        if key.startswith("isolation:") and isinstance(result, dict) and result.get("instanceId"):
            out[str(result["instanceId"])] = result
    return out


def isolation_entries(record: dict[str, Any] | None, instance_id: str) -> list[dict[str, Any]]:
    """The isolation task's timeline entries about the instance (its ``subject``), every execution of the incident."""
    return [e for e in (record or {}).get("timeline") or [] if isinstance(e, dict) and e.get("task") == "isolation"
            and e.get("subject") == instance_id]


def recorded_pre_state(result: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The isolation result with the pre-state its timeline notes keep (responder.isolation.PRE_STATE_NOTE): the
    claim of a later attempt resets ``results``, so a re-run's result holds the instance as the first attempt
    left it. The earliest capture is the pre-state (nothing changed before the incident's first attempt); what
    each attempt removed is merged, the first record of each item standing. A record without the notes (written
    before them) is read from the result alone."""
    notes = [e for e in entries if isinstance(e, dict) and e.get("status") == "recorded"
             and e.get("step") == "capture_metadata"]
    first = next((n["preState"] for n in notes if isinstance(n.get("preState"), dict)), None)
    if first is None:
        return result
    pre: dict[str, Any] = {}
    acl: dict[tuple, dict[str, Any]] = {}
    for note in notes:
        removed = note.get("removed") if isinstance(note.get("removed"), dict) else {}
        for vpc, group in (removed.get("quarantineGroups") or {}).items():
            pre.setdefault("quarantineGroups", {}).setdefault(vpc, group)
        for name in removed.get("classicLoadBalancers") or []:
            if name not in pre.setdefault("classicLoadBalancers", []):
                pre["classicLoadBalancers"].append(name)
        for tg in removed.get("targetGroups") or []:
            if isinstance(tg, dict) and tg.get("targetGroupArn") not in [
                    t["targetGroupArn"] for t in pre.get("targetGroups") or []]:
                pre.setdefault("targetGroups", []).append(tg)
        if isinstance(removed.get("autoScalingGroup"), dict):
            pre.setdefault("autoScalingGroup", removed["autoScalingGroup"])
        for entry in note.get("networkAclEntries") or []:
            if isinstance(entry, dict):
                acl.setdefault((entry.get("networkAclId"), entry.get("ruleNumber"), entry.get("direction")), entry)
    merged = dict(result, metadata=dict(result.get("metadata") or {}, interfaces=first.get("interfaces") or [],
                                        instanceProfileArn=first.get("instanceProfileArn")),
                  preState=pre, networkAclEntries=list(acl.values()))
    merged.pop("truncated", None)  # the notes are complete where the result was cut
    return merged


def instance_changes(result: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the isolation changed on the instance, from its recorded done entries and its result (the metadata
    before any change, ``networkAclEntries``, ``preState``): ``{"interfaceIds", "interfaces": {eni: {"groups",
    "quarantine"}}, "profile", "acl": [...], "classic": [...], "targetGroups": [...], "autoScaling", "lacking": [what
    the record cannot tell]}``. A pre-state captured after an earlier isolation already changed the instance (a
    re-run) is not a pre-state: lacking."""
    done = [e for e in entries if isinstance(e, dict) and e.get("status") == "done"]

    def did(step: str, api: str) -> list[str]:
        return list(dict.fromkeys(str(e.get("target")) for e in done
                                  if e.get("step") == step and e.get("api") == api and e.get("target")))

    meta, pre = result.get("metadata") or {}, result.get("preState") or {}
    lacking = [f"the isolation result in the record is truncated ({result['truncated']})"] if result.get("truncated") else []
    recorded = {str(n.get("networkInterfaceId")): n for n in meta.get("interfaces") or [] if isinstance(n, dict)}
    quarantine = pre.get("quarantineGroups") or {}
    responder_groups = set(quarantine.values())
    interfaces: dict[str, dict[str, Any]] = {}
    for eni in did("network_isolation", "ec2:ModifyNetworkInterfaceAttribute"):
        nic = recorded.get(eni)
        group = quarantine.get(str((nic or {}).get("vpcId")))
        if nic is None or not group:
            lacking.append(f"the record has no original groups or quarantine group of {eni}")
        elif set(nic.get("groups") or []) & responder_groups or not nic.get("groups"):
            lacking.append(f"the recorded groups of {eni} were captured after the isolation (a re-run)")
        else:
            interfaces[eni] = {"groups": list(nic["groups"]), "quarantine": group}
    profile = None
    if did("instance_profile", "ec2:ReplaceIamInstanceProfileAssociation"):
        profile = meta.get("instanceProfileArn")
        if not profile:
            lacking.append("the record has no original instance profile")
    entries_added = {(str(x.get("networkAclId")), int(x.get("ruleNumber") or 0), x.get("direction")): x
                     for x in result.get("networkAclEntries") or [] if isinstance(x, dict)}
    acl = []
    for target in did("network_acl", "ec2:CreateNetworkAclEntry"):
        m = ACL_TARGET.fullmatch(target)
        key = (m.group(1), int(m.group(2)), "outbound" if m.group(3) == "out" else "inbound") if m else None
        if key is None or key not in entries_added:
            lacking.append(f"the record has no CIDR of the network ACL entry {target}")
        else:
            acl.append({"networkAclId": key[0], "ruleNumber": key[1], "egress": key[2] == "outbound",
                        "cidr": entries_added[key].get("cidr")})
    classic = did("classic_load_balancers", "elasticloadbalancing:DeregisterInstancesFromLoadBalancer")
    if classic and set(classic) - set(pre.get("classicLoadBalancers") or []):
        lacking.append("the record does not list the Classic load balancers the isolation deregistered from")
    registrations = {str(t.get("targetGroupArn")): t.get("targets") or [] for t in pre.get("targetGroups") or []
                     if isinstance(t, dict)}
    target_groups = []
    for arn in did("target_groups", "elasticloadbalancing:DeregisterTargets"):
        if not registrations.get(arn):
            lacking.append(f"the record has no registrations (ports) of {arn}")
        else:
            target_groups.append({"targetGroupArn": arn, "targets": registrations[arn]})
    detached = bool(did("auto_scaling", "autoscaling:DetachInstances"))
    return {"interfaceIds": sorted(recorded), "interfaces": interfaces, "profile": profile, "acl": acl,
            "classic": classic, "targetGroups": target_groups, "lacking": lacking,
            "autoScaling": (pre.get("autoScalingGroup") or {"name": None}) if detached else None}


def _acl_entry(acl: dict | None, number: int, egress: bool) -> dict | None:
    return next((e for e in (acl or {}).get("Entries") or [] if e.get("RuleNumber") == number
                 and bool(e.get("Egress")) is egress), None)


def instance_plan(changes: dict[str, Any], *, instance: dict | None, associations: list[dict], profile_exists: bool,
                  acls: dict[str, dict], classic: dict[str, list[str] | None],
                  target_groups: dict[str, list[dict] | None], membership: dict | None, group: dict | None,
                  deny_all_profile: str, restore_autoscaling: bool, released: bool
                  ) -> tuple[list[str], list[tuple], list[str]]:
    """(conflicts, steps, notes) for one instance. Pure: the arguments are the instance as EC2, IAM, ELB and Auto
    Scaling describe it now; `released` whether an earlier release of this incident already undid it. Steps, in
    the order they are made: ("profile", association id, ARN), ("acl", ACL id, rule number, egress), ("groups",
    interface, group ids), ("classic", name), ("targets", target group ARN, targets), ("attach", group)."""
    state = ((instance or {}).get("State") or {}).get("Name")
    if instance is None or state in GONE_STATES:
        return [f"the instance is {state}" if state else "the instance no longer exists"], [], []
    conflicts: list[str] = list(changes["lacking"])
    steps: list[tuple] = []
    notes: list[str] = []
    now = {n["NetworkInterfaceId"]: [g["GroupId"] for g in n.get("Groups") or []]
           for n in instance.get("NetworkInterfaces") or []}
    added, removed = sorted(set(now) - set(changes["interfaceIds"])), sorted(set(changes["interfaceIds"]) - set(now))
    if added or removed:
        conflicts.append("its network interfaces changed since containment"
                         + (f" (added {', '.join(added)})" if added else "")
                         + (f" (removed {', '.join(removed)})" if removed else ""))
    current_profile = next(((a.get("IamInstanceProfile") or {}).get("Arn") for a in associations), None)
    if changes["profile"]:
        if (current_profile or "").rsplit("/", 1)[-1] == deny_all_profile:
            if profile_exists:
                steps.append(("profile", associations[0]["AssociationId"], changes["profile"]))
            else:
                conflicts.append(f"its original instance profile {changes['profile']} no longer exists (or was "
                                 "made again under its name since containment)")
        elif not (released and current_profile == changes["profile"]):
            conflicts.append(f"its instance profile is {current_profile or 'none'}, not the deny-all profile "
                             f"{deny_all_profile} the isolation set")
    for e in changes["acl"]:
        where = f"network ACL entry {e['networkAclId']} #{e['ruleNumber']} {'outbound' if e['egress'] else 'inbound'}"
        entry = _acl_entry(acls.get(e["networkAclId"]), e["ruleNumber"], e["egress"])
        if entry is None:
            if not released:
                conflicts.append(f"the {where} the isolation added was removed since containment")
        elif ((entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")) == e["cidr"] and entry.get("RuleAction") == "deny"
              and str(entry.get("Protocol")) == "-1"):
            steps.append(("acl", e["networkAclId"], e["ruleNumber"], e["egress"]))
        else:
            conflicts.append(f"the {where} is not the deny for {e['cidr']} the isolation added (changed since "
                             "containment)")
    for eni, moved in changes["interfaces"].items():
        if eni not in now:
            continue  # reported above
        if now[eni] == [moved["quarantine"]]:
            steps.append(("groups", eni, moved["groups"]))
        elif not (released and sorted(now[eni]) == sorted(moved["groups"])):
            conflicts.append(f"interface {eni} is in {', '.join(now[eni]) or 'no group'}, not only the quarantine "
                             f"group {moved['quarantine']} (changed since containment)")
    instance_id = instance["InstanceId"]
    for name in changes["classic"]:
        holding = classic.get(name)
        if holding is None:
            if not released:
                conflicts.append(f"the Classic load balancer {name} no longer exists")
        elif instance_id not in holding:
            steps.append(("classic", name))
    for tg in changes["targetGroups"]:
        live = target_groups.get(tg["targetGroupArn"])
        if live is None:
            if not released:
                conflicts.append(f"the target group {tg['targetGroupArn']} no longer exists")
            continue
        have = {(t.get("Id"), t.get("Port")) for t in live}
        missing = [t for t in tg["targets"] if (t.get("Id"), t.get("Port")) not in have]
        if missing:
            steps.append(("targets", tg["targetGroupArn"], missing))
    scaling = changes["autoScaling"]
    if scaling and not restore_autoscaling:
        notes.append(f"not re-attached to the Auto Scaling group {scaling.get('name') or '?'}: restoreAutoScaling "
                     "was not asked (the group launched a replacement)")
    elif scaling:
        name = scaling.get("name")
        if not name:
            conflicts.append("the record does not name the Auto Scaling group the isolation detached it from")
        elif membership is not None:
            if membership.get("AutoScalingGroupName") != name:
                conflicts.append(f"it is in the Auto Scaling group {membership.get('AutoScalingGroupName')} now, "
                                 f"not {name}")
        elif group is None:
            conflicts.append(f"the Auto Scaling group {name} no longer exists")
        elif int(group.get("DesiredCapacity") or 0) + 1 > int(group.get("MaxSize") or 0):
            conflicts.append(f"re-attaching it to {name} would exceed the group's MaxSize {group.get('MaxSize')} "
                             f"(desired {group.get('DesiredCapacity')}): AttachInstances would be refused")
        else:
            steps.append(("attach", name))
            if scaling.get("lifecycleState") == "Standby":
                notes.append(f"it was Standby in {name}; AttachInstances puts it InService")
    return conflicts, steps, notes


# -- the task -----------------------------------------------------------------------------------------------------
ROLE_KEPT = ("nothing to release: a role's containment is only the AWSRevokeOlderSessions deny, which a release "
             "keeps (sessions issued before the cut-off stay revoked; new sessions are unaffected)")


def _check_users(incident: dict[str, Any], record: dict[str, Any] | None, reader: Iam, quarantine_policy_arn: str,
                 denies_all: Callable[[dict | None], bool]) -> list[dict[str, Any]]:
    users = user_results(record)
    checked = []
    for name in incident["release"]["iamUsers"]:
        result = users[name]
        arn = str(result["target"])
        changes = user_changes(result, containment_entries(record, arn), quarantine_policy_arn)
        completed = release_completed(record, arn)
        if completed:
            checked.append({"kind": "user", "target": arn, "name": name, "conflicts": [], "steps": [],
                            "changes": changes, "notes": [COMPLETED_NOTE.format(completed)]})
            continue
        user = reader.get_user(name)
        keys = {k["AccessKeyId"]: k.get("Status") for k in reader.access_keys(name)} if user else {}
        attached = reader.attached_user_policies(name) if user else set()
        deny_all = reader.user_policy(name, DENY_ALL_POLICY_NAME) if user and changes["denyAll"] else None
        conflicts, steps = user_plan(changes, user=user, user_id=result.get("userId"), attached=attached, keys=keys,
                                     deny_all=deny_all, denies_all=denies_all, released=released_before(record, arn))
        notes: list[str] = []
        if incident["release"].get("restoreConsoleAccess") and user:
            more, console, notes = console_plan(changes, profile=reader.login_profile(name),
                                                restored_before=console_restored_before(record, arn))
            conflicts, steps = conflicts + more, steps + console
        checked.append({"kind": "user", "target": arn, "name": name, "conflicts": conflicts, "steps": steps,
                        "changes": changes, "notes": notes})
    return checked


def _check_instances(incident: dict[str, Any], record: dict[str, Any] | None, a: Any,
                     deny_all_profile: str) -> list[dict[str, Any]]:
    results = instance_results(record)
    restore_autoscaling = bool(incident["release"].get("restoreAutoScaling"))
    checked = []
    for instance_id in incident["release"]["instances"]:
        result = results[instance_id]
        arn = str(result.get("target") or instance_id)
        entries = isolation_entries(record, instance_id)
        changes = instance_changes(recorded_pre_state(result, entries), entries)
        completed = release_completed(record, arn)
        if completed:
            checked.append({"kind": "instance", "target": arn, "name": instance_id, "conflicts": [], "steps": [],
                            "changes": changes, "notes": [COMPLETED_NOTE.format(completed)]})
            continue
        instance = a.ec2.describe_instance(instance_id)
        alive = instance is not None and ((instance.get("State") or {}).get("Name")) not in GONE_STATES
        associations = a.ec2.profile_associations(instance_id) if alive and changes["profile"] else []
        original = (a.iam.instance_profile(changes["profile"].rsplit("/", 1)[-1]) or {}) \
            if changes["profile"] and alive else {}
        # the same ARN is not the same profile: one deleted and made again under its name (with another role) was
        # created after the isolation first saw the instance
        profile_exists = original.get("Arn") == changes["profile"] and bool(changes["profile"]) and not \
            made_since(original.get("CreateDate"), entries)
        acls = a.ec2.acls([e["networkAclId"] for e in changes["acl"]]) if alive and changes["acl"] else {}
        classic = {name: a.classic.instances(name) for name in changes["classic"]} if alive else {}
        target_groups = ({tg["targetGroupArn"]: a.target_groups.registered(tg["targetGroupArn"])
                          for tg in changes["targetGroups"]} if alive else {})
        scaling = changes["autoScaling"] if restore_autoscaling and alive else None
        membership = a.autoscaling.membership(instance_id) if scaling and scaling.get("name") else None
        group = a.autoscaling.group(scaling["name"]) if scaling and scaling.get("name") and membership is None else None
        others = other_incidents(instance, incident["incidentId"])
        conflicts, steps, notes = instance_plan(
            changes, instance=instance, associations=associations, profile_exists=profile_exists, acls=acls,
            classic=classic, target_groups=target_groups, membership=membership, group=group,
            deny_all_profile=deny_all_profile, restore_autoscaling=restore_autoscaling,
            released=released_before(record, arn))
        if group is not None and made_since(group.get("CreatedTime"), entries):  # not the group it was in
            conflicts.append(f"the Auto Scaling group {scaling['name']} was made again under its name since "
                             "containment (created after the isolation): it is not the group the instance was in")
        if others:
            conflicts.append(f"incident(s) {', '.join(others)} found it isolated and hold it too (tags {INCIDENT_TAG}/"
                             f"{LATER_INCIDENTS_TAG}): releasing this incident would lift their containment; a "
                             "person decides, and releases by hand")
        checked.append({"kind": "instance", "target": arn, "name": instance_id, "conflicts": conflicts,
                        "steps": steps, "changes": changes, "notes": notes})
    return checked


def _restore_console(c: dict[str, Any], client: Iam, j: Journal, incident: dict[str, Any],
                     secrets_for: Callable[[Journal], Any] | None) -> str | None:
    """A new console password, reset required at the first sign-in, kept in a secret of the responder's account
    (stored first: a password is never set that nobody can read). Returns the secret's ARN; the password itself
    goes nowhere else (a dry run plans both calls with a placeholder)."""
    if secrets_for is None:
        raise StepFailed("NoSecretStore", "restoreConsoleAccess needs the responder's Secrets Manager")
    name, arn = c["name"], c["target"]
    password = PLANNED_PASSWORD if j.dry_run else new_password()
    secret = secret_name(incident["incidentId"], incident["accountId"], name)
    value = json.dumps({"incidentId": incident["incidentId"], "accountId": incident["accountId"], "userName": name,
                        "password": password, "passwordResetRequired": True})
    stored = secrets_for(j).store(secret, value, tags={"ir:incident": incident["incidentId"], "ir:user": arn[:256]},
                                  description=f"Console password restored by the release of {incident['incidentId']}")
    client.create_login_profile(name, password, target=arn)
    del password, value
    return stored or (None if j.dry_run else secret)


def _undo_user(c: dict[str, Any], client: Iam, j: Journal, incident: dict[str, Any] | None = None,
               secrets_for: Callable[[Journal], Any] | None = None) -> None:
    name, arn = c["name"], c["target"]
    with j.step("release_user", arn):
        for kind, what in c["steps"]:
            if kind == "console":
                continue  # after the policies and keys, in its own step (below)
            if kind == "detach":
                client.detach_user_policy(name, what, target=arn)
            elif kind == "activate":
                client.activate_access_key(name, what, target=what)
            elif kind == "delete_inline":
                client.delete_user_policy(name, what, target=arn)
            else:  # pragma: no cover - user_plan makes only the kinds above
                raise StepFailed("UnknownStep", kind)
    if any(step[0] == "console" for step in c["steps"]) and not j.failures:
        with j.step("restore_console_access", arn):
            c["secretArn"] = _restore_console(c, client, j, incident or {}, secrets_for)


def _undo_instance(c: dict[str, Any], a: Any, j: Journal) -> None:
    """In the order that never opens more than the pre-state: credentials, ACL entries, groups, then the load
    balancers and last the Auto Scaling group (attached while still quarantined, its health checks would fail and
    the group would replace it - termination protection does not stop Auto Scaling)."""
    instance_id = c["name"]
    for step in c["steps"]:
        kind = step[0]
        with j.step(f"release_{kind}", instance_id if kind in ("profile", "attach") else str(step[1])):
            if kind == "profile":
                a.ec2.restore_profile(step[1], step[2], target=instance_id)
            elif kind == "acl":
                a.ec2.delete_acl_entry(step[1], step[2], step[3])
            elif kind == "groups":
                a.ec2.set_interface_groups(step[1], step[2])
            elif kind == "classic":
                a.classic.register(step[1], instance_id)
            elif kind == "targets":
                a.target_groups.register(step[1], step[2])
            elif kind == "attach":
                a.autoscaling.attach(instance_id, step[1])
            else:  # pragma: no cover - instance_plan makes only the kinds above
                raise StepFailed("UnknownStep", kind)


def release(incident: dict[str, Any], *, record: dict[str, Any] | None, iam: Callable[[Journal], Iam],
            quarantine_policy_arn: str, denies_all: Callable[[dict | None], bool],
            journal: Callable[[], Journal], adapters: Callable[[Journal], Any] | None = None,
            deny_all_profile: str = "", secrets: Callable[[Journal], Any] | None = None) -> dict[str, Any]:
    """Check every named target, then (only when none conflicts) undo what containment changed. `adapters(journal)`
    gives the instance adapters (``ec2``, ``iam``, ``classic``, ``target_groups``, ``autoscaling``) on the release
    role. Returns ``{"status", "targets": [{"target", "name", "status", "conflicts"?, "entries", "kept"}]}``; status
    is ``released``, ``planned`` (dry run), ``already_released``, ``refused`` or ``failed``."""
    checked: list[dict[str, Any]] = []
    if incident["release"]["iamUsers"]:
        checked += _check_users(incident, record, iam(Journal()), quarantine_policy_arn, denies_all)
    if incident["release"].get("instances"):
        if adapters is None:  # pragma: no cover - the handler always passes them
            raise StepFailed("NoAdapters", "instances cannot be released without the EC2 adapters")
        checked += _check_instances(incident, record, adapters(Journal()), deny_all_profile)
    if (record or {}).get("timelineOmitted"):  # the saved pre-state may be incomplete: fail closed
        for c in checked:
            c["conflicts"].append("the incident record's timeline is incomplete (timelineOmitted): release by hand "
                                  "from the manifest")
    roles = [{"kind": "role", "target": str(r["target"]), "name": name, "status": "nothing_to_release",
              "entries": [], "kept": [ROLE_KEPT]} for name, r in
             ((n, role_results(record)[n]) for n in incident["release"].get("roles") or [])]

    if any(c["conflicts"] for c in checked):
        return {"status": "refused", "targets": [
            {"target": c["target"], "name": c["name"], "status": "refused" if c["conflicts"] else "not_released",
             "conflicts": c["conflicts"], "entries": []} for c in checked] + [
            dict(r, status="not_released") for r in roles]}
    out: list[dict[str, Any]] = []
    for c in checked:
        j = journal()
        if c["kind"] == "user":
            _undo_user(c, iam(j), j, incident, secrets)
            kept = ["AWSRevokeOlderSessions (sessions issued before the cut-off stay revoked)"]
        else:
            _undo_instance(c, adapters(j), j)
            kept = INSTANCE_KEPT + c["notes"]
        status = ("failed" if j.failures else "planned" if j.dry_run and j.changes else
                  "released" if j.changes else "already_released")
        item = {"target": c["target"], "name": c["name"], "status": status, "entries": j.entries, "kept": kept}
        if c.get("secretArn"):
            item["consoleAccess"] = (f"restored: a new password (reset required at the first sign-in) is in the "
                                     f"secret {c['secretArn']} of the responder's account")
        elif any(step[0] == "console" for step in c["steps"]):
            item["consoleAccess"] = ("planned: a new password (reset required) stored in the secret "
                                     f"{secret_name(incident['incidentId'], incident['accountId'], c['name'])}"
                                     if j.dry_run and not j.failures else
                                     "not restored: see the restore_console_access step")
        elif c["kind"] == "user" and c["changes"]["loginProfile"] and not incident["release"].get(
                "restoreConsoleAccess"):
            item["consoleAccess"] = ("not restored: the login profile was removed at containment; ask again with "
                                     "restoreConsoleAccess: true (a new password, reset required, in a secret of "
                                     "the responder's account)")
        if c["notes"]:
            item["notes"] = c["notes"]
        out.append(item)
    out += roles
    statuses = [t["status"] for t in out]
    for status in ("failed", "planned", "released", "already_released"):
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
                           "consoleAccess": t.get("consoleAccess"),
                           "notes": [n[:300] for n in (t.get("notes") or [])[:3]] or None}.items() if v is not None}
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
