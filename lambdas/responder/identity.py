"""Identity containment: decide what to do with each identity of an incident, and do it through the IAM adapter.

**Every target is resolved from AWS, never from the finding's strings** (the attacker shapes names):

IAMUser      the owner of a long-term key (``AKIA...``) is the user IAM names for it (``GetAccessKeyLastUsed``),
             confirmed by the key being in that user's ``ListAccessKeys``: a renamed user, or a ``userName`` that
             names someone else, still leads to the key's real owner (the mismatch is recorded: ``findingName``).
             Without such a key (a session key ``ASIA...``, a manual request) the named user is taken, but when the
             finding's ``principalId`` (the user's ``AIDA...`` id) is not that user's ``UserId``, CloudTrail's record
             of the key names the user instead. A key that no longer exists leads to the named user only when its
             ``UserId`` is the finding's ``principalId``. Nothing found: ``not_found``.
AssumedRole  contained only if the role's ``RoleId`` is the finding's ``principalId`` prefix (``AROA...:session``).
             Otherwise CloudTrail's record of the session key names the issuing role (``sessionIssuer.arn``): in
             this account it is contained instead; in another account the outcome is a manual step naming the role
             and the account. A role that did not issue the credentials is never touched. Manual requests name the
             role itself (a person asked).
Root, FederatedUser and other types: IAM cannot contain them; the outcome records the steps a person must take.

Then, for a user: the quarantine managed policy (when IAM refuses it - 10 managed policies per user, a permissions
boundary or SCP - a small inline deny-all, ``ir-quarantine-deny-all``, takes its place and the record says why);
console access removed (``DeleteLoginProfile``, the profile's ``CreateDate`` recorded so a release can restore it
with a new password; ``IR_REMOVE_CONSOLE_ACCESS``, default true); access keys deactivated (never deleted):
``IR_KEY_SCOPE=all`` (default, the field runbook: "deactivate all access keys") or ``named`` (only the finding's key
when it is one of the owner's long-term keys); the inline ``AWSRevokeOlderSessions`` deny so session tokens minted
before the cut-off die too. For a role: the inline ``AWSRevokeOlderSessions`` (service-linked and Identity Center
roles cannot be changed: manual steps).

Every step reads first and changes only what is not already so: a second run changes nothing. A protected
principal (see responder.protection) is never touched.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from botocore.exceptions import ClientError

from responder.errors import best_effort, error_code, is_transient, recorded
from responder.journal import Journal
from responder.policies import covers, revoke_cutoff, revoke_older_sessions
from responder.protection import TAG_UNVERIFIED, UNVERIFIABLE, approved, protected_reason, tag_claim, tagged
from responder.scope import lookup_regions, window
from responder.settings import DENY_ALL_POLICY_NAME, REVOKE_POLICY_NAME, Settings

Iam = Any  # the IAM adapter (responder.aws.iam.Iam), built by the handler: the domain never imports responder.aws

DENY_ALL = {"Version": "2012-10-17", "Statement": [
    {"Sid": "IrQuarantineDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"}]}

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


RESOLUTION_LOOKBACK_DAYS = 90  # CloudTrail event history keeps 90 days
TAG_EVENT_PAGES = 5


def _result(identity: dict, target: str, journal: Journal, status: str, **extra: Any) -> dict[str, Any]:
    """One target's result. ``name`` is the principal acted on (``extra`` gives it when it was resolved to
    another than the finding's: ``findingName`` keeps what the finding said)."""
    if journal.failures:
        status = "failed"
    return {"kind": "identity", "type": identity["type"], "name": identity.get("name"), "target": target,
            "status": status, "entries": journal.entries, **extra}


def _changed_status(journal: Journal) -> str:
    if journal.dry_run and journal.changes:
        return "planned"
    return "contained" if journal.changes else "already_contained"


# -- CloudTrail reads (resolution, who set a protection tag) ------------------------------------------------
class Trail:
    """The CloudTrail reads identity containment needs in the incident's account. Lazily built adapters; a read
    that fails answers None (the caller then fails closed), never an exception."""

    def __init__(self, cloudtrail_for: Callable[[str], Any] | None, incident: dict,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._for, self._incident, self._now = cloudtrail_for, incident, now
        self._adapters: dict[str, Any] = {}
        self.calls: list[str] = []

    def _lookup(self, region: str, attribute: str, value: str, pages: int) -> dict[str, Any] | None:
        if self._for is None:
            return None
        try:
            if region not in self._adapters:
                self._adapters[region] = self._for(region)
            end = self._now() + timedelta(minutes=5)
            self.calls.append(f"{region}:{attribute}={value}")
            return self._adapters[region].lookup(attribute, value, start=end - timedelta(
                days=RESOLUTION_LOOKBACK_DAYS), end=end, max_pages=pages)
        except Exception as exc:  # CloudTrail is a best-effort aid here: any AWS error means "not known"
            if not best_effort(exc):
                raise
            return None

    def key_records(self, key: str) -> list[dict] | None:
        """CloudTrail records made with `key` (newest first), from the incident's region and the global one."""
        found, failed = [], False
        for region in lookup_regions(self._incident):
            got = self._lookup(region, "AccessKeyId", key, 1)
            if got is None:
                failed = True
                continue
            found += [e["CloudTrailEvent"] for e in got["events"] if isinstance(e.get("CloudTrailEvent"), dict)]
            if found:
                break
        return None if failed and not found else found

    def tag_records(self, kind: str) -> tuple[list[dict] | None, bool]:
        """Records of the calls that can set a tag on an IAM user / role (IAM events are in the global region)."""
        names = ("TagUser", "CreateUser") if kind == "user" else ("TagRole", "CreateRole")
        region = lookup_regions(self._incident)[-1]
        records, complete = [], True
        for name in names:
            got = self._lookup(region, "EventName", name, TAG_EVENT_PAGES)
            if got is None:
                return None, False
            complete = complete and not got["truncated"]
            records += [e["CloudTrailEvent"] for e in got["events"] if isinstance(e.get("CloudTrailEvent"), dict)]
        return records, complete


def _key_owner_from_trail(records: list[dict] | None, account: str) -> tuple[str | None, str | None]:
    """(user name, issuing role ARN) the CloudTrail records of a key name for it."""
    for record in records or []:
        who = record.get("userIdentity") or {}
        if who.get("type") == "IAMUser" and who.get("accountId") == account and who.get("userName"):
            return who["userName"], None
        issuer = (who.get("sessionContext") or {}).get("sessionIssuer") or {}
        if who.get("type") == "AssumedRole" and issuer.get("arn"):
            return None, issuer["arn"]
        if who.get("type") == "IAMUser" and who.get("arn"):
            return None, who["arn"]  # a user of another account
    return None, None


# -- protection --------------------------------------------------------------------------------------------
def _protection(arn: str, kind: str, name: str, tags: dict | None, incident: dict, settings: Settings,
                trail: Trail) -> tuple[str | None, dict]:
    """(why the target must not be contained or None, facts to record). A protection tag is checked against
    CloudTrail (who set it, when): see responder.protection."""
    account, partition = incident.get("accountId"), incident.get("partition") or "aws"
    verdict, facts = None, {}
    if tags is not None and tagged(tags, settings) and not protected_reason(
            arn, {}, settings, account=account, partition=partition):
        records, complete = trail.tag_records(kind)
        span = incident.get("window") or window(incident["cutoff"])
        verdict = tag_claim(arn, kind, name, records, window_start=span["start"], settings=settings,
                            complete=complete)
        facts["protectionTag"] = {"verdict": verdict.verdict, "why": verdict.why,
                                  **({"event": verdict.event} if verdict.event else {})}
    if verdict is not None and approved(incident):
        answer = incident["approval"]
        facts["protectionTag"]["approvedBy"] = {k: answer.get(k) for k in ("by", "at", "reason")}
    return protected_reason(arn, tags, settings, account=account, partition=partition, tag_verdict=verdict,
                            approved=approved(incident)), facts


def _tag_notes(journal: Journal, arn: str, facts: dict) -> None:
    tag = facts.get("protectionTag") or {}
    if tag.get("verdict") == "void":
        journal.note("unprotected", arn, detail=f"protection tag ignored: {tag['why']}")
    elif tag.get("approvedBy"):
        who = tag["approvedBy"]
        journal.note("unprotected", arn, detail=f"protection tag ({tag.get('verdict')}): containment approved by "
                                                f"{who.get('by')} at {who.get('at')}: {who.get('reason')}")


def _contain_command(incident: dict, kind: str, name: str) -> list[str]:
    key = "iamUsers" if kind == "user" else "roles"
    request = {"manual": {"accountId": incident.get("accountId"), "region": incident.get("region"),
                          "reason": f"protection claim on {kind} {name} checked by hand",
                          key: [name], "incidentId": incident.get("incidentId")}}
    return [f"The {kind} carries the protection tag, but who set it and when cannot be established from CloudTrail "
            "(event history keeps 90 days). Check with the principal's owner; if the claim is not genuine, remove "
            f"the tag (aws iam untag-{kind} --{kind}-name {name} --tag-keys <tag>) and contain it:",
            "aws stepfunctions start-execution --state-machine-arn <containment state machine> --input "
            + json.dumps(request, separators=(",", ":")),
            "To protect a principal for good, list its ARN in protectedPrincipals instead of tagging it."]


def _protected(journal: Journal, identity: dict, arn: str, reason: str, facts: dict, incident: dict, kind: str,
               name: str) -> dict[str, Any]:
    journal.note("protected", arn, detail=reason)
    if reason in (UNVERIFIABLE, TAG_UNVERIFIED):
        extra = {"manualSteps": _contain_command(incident, kind, name)} if reason == TAG_UNVERIFIED else {}
        return _result(identity, arn, journal, "protection_unverified", reason=reason, **facts, **extra)
    extra = {}
    if (facts.get("protectionTag") or {}).get("verdict") == "protects":  # the tag asks for approval, not immunity
        extra["manualSteps"] = _approval_command(incident, kind, name)
    return _result(identity, arn, journal, "protected", reason=reason, **facts, **extra)


def _approval_command(incident: dict, kind: str, name: str) -> list[str]:
    option = "--user" if kind == "user" else "--role"
    return [f"The {kind} carries the protection tag: it asks for a person's approval, not immunity. To contain it, "
            "start a response that waits for an approval, then approve it:",
            f"python -m cli start {option} {name} --account {incident.get('accountId')} --region "
            f"{incident.get('region')} --reason \"<why>\" --level approval",
            'python -m cli approve <incident id> --reason "<why>"']


def _not_found(journal: Journal, identity: dict, incident: dict, looked_for: str, why: str,
               **extra: Any) -> dict[str, Any]:
    where = f"account {incident.get('accountId')} ({incident.get('region')})"
    reason = f"{looked_for} not found in {where}: {why}"
    journal.note("not_found", looked_for, detail=reason)
    return _result(identity, looked_for, journal, "not_found", reason=reason, lookedFor=looked_for, **extra)


# -- users -------------------------------------------------------------------------------------------------
def resolve_user(iam: Iam, identity: dict, incident: dict, trail: Trail) -> tuple[dict | None, list[dict], dict]:
    """(the IAM user to contain or None, its access keys, facts to record: how it was found, or why not)."""
    named, key, principal = identity.get("name"), identity.get("accessKeyId"), identity.get("principalId")
    facts: dict[str, Any] = {}

    def confirmed(user_name: str | None, how: str) -> tuple[dict | None, list[dict]]:
        if not user_name:
            return None, []
        user = iam.get_user(user_name)
        if user is None:
            return None, []
        keys = iam.access_keys(user["UserName"])
        if key and key.startswith("AKIA") and how == "iam" and key not in {k["AccessKeyId"] for k in keys}:
            return None, []  # IAM named a user of another account, or the key moved: not this account's key
        facts["resolvedBy"] = how
        if named and user["UserName"].lower() != named.lower():
            facts["findingName"] = named
            facts["mismatch"] = (f"the finding names user {named}, but {'IAM' if how == 'iam' else 'CloudTrail'} "
                                 f"says {key or principal} belongs to {user['UserName']}")
        return user, keys

    if key and key.startswith("AKIA"):
        user, keys = confirmed(iam.access_key_owner(key), "iam")
        if user:
            return user, keys, facts
        facts["why"] = f"IAM knows no access key {key} in this account"
        if named and principal:  # the key is gone: the named user only if it is the finding's principal
            user = iam.get_user(named)
            if user and user.get("UserId") == principal:
                facts.update(resolvedBy="principalId", keyNotFound=key)
                return user, iam.access_keys(user["UserName"]), facts
            if user:
                facts["why"] += (f"; user {named} is {user.get('UserId')}, not the finding's principal {principal}: "
                                 "not contained")
        return None, [], facts
    user = iam.get_user(named) if named else None
    if user and (not principal or not principal.startswith("AIDA") or user.get("UserId") == principal):
        facts["resolvedBy"] = "name"
        return user, iam.access_keys(user["UserName"]), facts
    if key:
        owner, elsewhere = _key_owner_from_trail(trail.key_records(key), incident.get("accountId"))
        user, keys = confirmed(owner, "cloudtrail")
        if user and (not principal or user.get("UserId") == principal or not principal.startswith("AIDA")):
            return user, keys, facts
        if elsewhere:
            facts["issuer"] = elsewhere
    facts["why"] = (f"user {named} is {user.get('UserId')}, not the finding's principal {principal}, and CloudTrail "
                    "names no other user for the key") if user else f"no IAM user {named or '?'}" + (
        f" and CloudTrail names no user for {key}" if key else "")
    return None, [], facts


def contain_user(iam: Iam, journal: Journal, identity: dict, incident: dict, settings: Settings,
                 trail: Trail | None = None) -> dict[str, Any]:
    trail = trail or Trail(None, incident)
    user, keys, facts = resolve_user(iam, identity, incident, trail)
    if user is None:
        looked = f"user/{identity.get('name') or '?'}" + (f" (key {identity['accessKeyId']})"
                                                           if identity.get("accessKeyId") else "")
        return _not_found(journal, identity, incident, looked, facts.pop("why", "not found"), **facts)
    name, arn = user["UserName"], user["Arn"]
    if facts.get("mismatch"):
        journal.note("resolved", arn, detail=facts["mismatch"])
    try:
        tags = {t["Key"]: t["Value"] for t in user["Tags"]} if "Tags" in user else iam.user_tags(name)
    except Exception as exc:  # fail closed: an unreadable tag set means "treat as protected"
        recorded(exc, f"ListUserTags {name}", "iam")  # a throttle is retried, a bug is raised
        tags = None
    reason, protection_facts = _protection(arn, "user", name, tags, incident, settings, trail)
    facts.update(protection_facts)
    _tag_notes(journal, arn, protection_facts)
    if reason:
        return _protected(journal, identity, arn, reason, facts, incident, "user", name)

    facts.update(_deny_user(iam, journal, name, arn, settings))
    if settings.remove_console_access:
        facts["loginProfile"] = _remove_console_access(iam, journal, name, arn)
    with journal.step("deactivate_access_keys", arn):
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
    # userId: the release (responder.release) refuses a user recreated under the same name since containment
    return _result(identity, arn, journal, _changed_status(journal), cutoff=incident["cutoff"], name=name,
                   userId=user.get("UserId"), **facts)


def denies_all(document: dict | None) -> bool:
    """Does the policy document deny every action on every resource, unconditionally? Pure."""
    statements = (document or {}).get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else statements

    def every(value: Any) -> bool:
        return value == "*" or value == ["*"]

    return any(isinstance(s, dict) and s.get("Effect") == "Deny" and every(s.get("Action"))
               and every(s.get("Resource")) and not s.get("Condition") for s in statements)


# IAM refuses the attachment but the user is there: another means denies it. (NoSuchEntity is not one of them: the
# user vanished mid-way, or the policy does not exist - a failure to report, not to paper over.)
FALLBACK_CODES = ("LimitExceeded", "AccessDenied", "PolicyNotAttachable")


def _deny_user(iam: Iam, journal: Journal, name: str, arn: str, settings: Settings) -> dict[str, Any]:
    """Attach the quarantine policy; when IAM refuses it, put the inline deny-all instead (the user must end fully
    denied either way). Returns what to record (``denyAll``: why the fallback was used)."""
    policy = settings.quarantine_policy_arn
    facts: dict[str, Any] = {}
    with journal.step("attach_quarantine_policy", arn):
        if policy in iam.attached_user_policies(name):
            journal.note("unchanged", arn, detail=f"{policy} already attached")
            return facts
        try:
            iam.attach_user_policy(name, policy, target=arn)
            return facts
        except ClientError as exc:
            code = error_code(exc)
            if is_transient(exc, "iam") or code not in FALLBACK_CODES:
                raise
            journal.entries[-1]["status"] = "refused"  # recorded with its error; the fallback below takes over
            why = {"LimitExceeded": "the user has as many managed policies as IAM allows (10 by default)",
                   "AccessDenied": "IAM denied it (a permissions boundary, SCP or the member role's own policy)",
                   }.get(code, code)
            facts["denyAll"] = f"{policy} could not be attached ({code}: {why}): inline deny-all instead"
    with journal.step("deny_all_inline", arn):  # read first: a second run finds it and changes nothing
        if denies_all(iam.user_policy(name, DENY_ALL_POLICY_NAME)):
            journal.note("unchanged", arn, detail=f"already denied everything by the inline {DENY_ALL_POLICY_NAME}")
        else:
            iam.put_user_policy(name, DENY_ALL_POLICY_NAME, DENY_ALL, target=arn)
    return facts


def _remove_console_access(iam: Iam, journal: Journal, name: str, arn: str) -> dict[str, Any]:
    """DeleteLoginProfile, as AWS's incident response playbooks do; the profile's existence and CreateDate are
    returned for the record (a release restores access with `aws iam create-login-profile --password-reset-required`)."""
    found: dict[str, Any] = {"existed": False}
    with journal.step("remove_console_access", arn):
        profile = iam.login_profile(name)
        if profile is None:
            journal.note("unchanged", arn, detail="no console password (no login profile)")
            return found
        created = profile.get("CreateDate")
        found = {"existed": True, "createDate": created.isoformat().replace("+00:00", "Z")
                 if isinstance(created, datetime) else str(created or ""),
                 "passwordResetRequired": bool(profile.get("PasswordResetRequired"))}
        iam.delete_login_profile(name, target=arn)
        if journal.entries and journal.entries[-1].get("api") == "iam:DeleteLoginProfile":
            journal.entries[-1]["detail"] = f"login profile created {found['createDate']} removed"
    return found


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


# -- roles -------------------------------------------------------------------------------------------------
def _role_id(principal: str | None) -> str | None:
    head = (principal or "").split(":", 1)[0]
    return head if head.startswith("AROA") else None


def _revoke_elsewhere_steps(role_arn: str, cutoff: str) -> list[str]:
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[-1]
    document = json.dumps(revoke_older_sessions(cutoff), separators=(",", ":"))
    return [f"The credentials were issued by {role_arn}, in account {account}, not in the finding's account.",
            f"In account {account}: aws iam put-role-policy --role-name {name} --policy-name {REVOKE_POLICY_NAME} "
            f"--policy-document '{document}'",
            f"Or, if {account} is a member account of this responder, start a manual request with "
            f"accountId {account} and roles [\"{name}\"]."]


def resolve_role(iam: Iam, identity: dict, incident: dict, trail: Trail) -> tuple[dict | None, dict]:
    """(the role that issued the credentials, in this account, or None; facts: how, or why not / where)."""
    name, principal, key = identity.get("name"), identity.get("principalId"), identity.get("accessKeyId")
    origin_finding = incident.get("origin") == "guardduty" or bool(principal or key)
    role = iam.get_role(name) if name else None
    wanted = _role_id(principal)
    if not origin_finding:
        return role, ({"resolvedBy": "name"} if role else {"why": f"no IAM role {name}"})
    if role and wanted and role.get("RoleId") == wanted:
        return role, {"resolvedBy": "roleId"}
    facts: dict[str, Any] = {}
    if role:
        facts["notIssuer"] = (f"role {role['Arn']} is {role.get('RoleId')}, not the finding's principal "
                              f"{principal or '(none)'}: not touched")
    _, issuer = _key_owner_from_trail(trail.key_records(key), incident.get("accountId")) if key else (None, None)
    if issuer and ":role/" in issuer:
        account = issuer.split(":")[4]
        if account == incident.get("accountId"):
            found = iam.get_role(issuer.rsplit("/", 1)[-1])
            if found and (not wanted or found.get("RoleId") == wanted):
                facts.update(resolvedBy="cloudtrail", findingName=name)
                return found, facts
        else:
            facts["issuer"] = issuer
            return None, facts
    facts["why"] = facts.get("notIssuer") or f"no IAM role {name}"
    facts["why"] += "; CloudTrail names no issuing role for the credentials" if key else ""
    return None, facts


def contain_role(iam: Iam, journal: Journal, identity: dict, incident: dict, settings: Settings,
                 trail: Trail | None = None) -> dict[str, Any]:
    trail = trail or Trail(None, incident)
    role, facts = resolve_role(iam, identity, incident, trail)
    if role is None and facts.get("issuer"):
        issuer = facts["issuer"]
        journal.note("manual", issuer, detail=f"issued by {issuer} in another account: revoke its sessions there"
                     + (f"; {facts['notIssuer']}" if facts.get("notIssuer") else ""))
        return _result(identity, issuer, journal, "manual", reason=f"the issuing role {issuer} is in another account",
                       manualSteps=_revoke_elsewhere_steps(issuer, incident["cutoff"]), **facts)
    if role is None:
        looked = f"role/{identity.get('name') or '?'}" + (f" ({identity['principalId']})"
                                                          if identity.get("principalId") else "")
        return _not_found(journal, identity, incident, looked, facts.pop("why", "not found"), **facts)
    name, arn, path = role["RoleName"], role["Arn"], role.get("Path", "/")
    if facts.get("findingName") and facts["findingName"] != name:
        journal.note("resolved", arn, detail=f"the finding names role {facts['findingName']}; CloudTrail says the "
                                             f"credentials were issued by {arn}")
    if path.startswith("/aws-service-role/"):
        journal.note("manual", arn, detail="service-linked role: IAM does not allow changing it")
        return _result(identity, arn, journal, "manual", manualSteps=MANUAL_STEPS["ServiceLinked"], **facts)
    if name.startswith("AWSReservedSSO_") or path.startswith("/aws-reserved/"):
        journal.note("manual", arn, detail="IAM Identity Center role: managed by Identity Center")
        return _result(identity, arn, journal, "manual", manualSteps=MANUAL_STEPS["SSO"], **facts)
    tags = {t["Key"]: t["Value"] for t in role.get("Tags", [])}
    reason, protection_facts = _protection(arn, "role", name, tags, incident, settings, trail)
    facts.update(protection_facts)
    _tag_notes(journal, arn, protection_facts)
    if reason:
        return _protected(journal, identity, arn, reason, facts, incident, "role", name)
    revoke(journal, arn, incident["cutoff"],
           read=lambda: iam.role_policy(name, REVOKE_POLICY_NAME),
           write=lambda doc: iam.put_role_policy(name, REVOKE_POLICY_NAME, doc, target=arn))
    return _result(identity, arn, journal, _changed_status(journal), cutoff=incident["cutoff"], name=name, **facts)


def manual(journal: Journal, identity: dict) -> dict[str, Any]:
    kind = identity["type"] if identity["type"] in MANUAL_STEPS else "Other"
    target = identity.get("name") or identity["type"]
    journal.note("manual", target, detail=f"{identity['type']}: IAM cannot contain this identity automatically")
    return _result(identity, target, journal, "manual", manualSteps=MANUAL_STEPS[kind])


def contain(identity: dict, incident: dict, *, iam_for: Callable[[Journal], Iam], settings: Settings,
            dry_run: bool, cloudtrail_for: Callable[[str], Any] | None = None,
            trail: Trail | None = None) -> dict[str, Any]:
    """Contain one identity of `incident`; `iam_for(journal)` gives the IAM adapter in the incident's account,
    `cloudtrail_for(region)` a CloudTrail adapter there (None: CloudTrail cannot be read - fail closed)."""
    journal = Journal(dry_run=dry_run)
    trail = trail or Trail(cloudtrail_for, incident)
    if identity["type"] == "IAMUser":
        return contain_user(iam_for(journal), journal, identity, incident, settings, trail)
    if identity["type"] == "AssumedRole":
        return contain_role(iam_for(journal), journal, identity, incident, settings, trail)
    return manual(journal, identity)


def contain_all(incident: dict, *, iam_for: Callable[[Journal], Iam], settings: Settings,
                cloudtrail_for: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Contain every identity of the incident. An AWS error that is not transient fails only that identity
    (recorded); the others are still contained."""
    results = []
    trail = Trail(cloudtrail_for, incident)
    for identity in incident.get("identities", []):
        try:
            results.append(contain(identity, incident, iam_for=iam_for, settings=settings,
                                   dry_run=bool(incident.get("dryRun")), trail=trail))
        except Exception as exc:
            code = recorded(exc, f"identity {identity.get('name')}", "iam")
            journal = Journal()
            target = identity.get("name") or identity["type"]
            journal.note("failed", target, error=code, message=str(exc)[:400])
            results.append(_result(identity, target, journal, "failed"))
    return {"identities": results, "status": summarize([r["status"] for r in results])}


def summarize(statuses: list[str]) -> str:
    """One status for a list of per-target statuses, worst first."""
    for status in ("failed", "protection_unverified", "protected", "not_found", "manual", "planned", "contained",
                   "already_contained"):
        if status in statuses:
            return status
    return "nothing_to_do"
