"""Protected principals and instances: never contained, whatever the finding says. Pure decisions.

A target is protected when any of these holds:

* it is one of the responder's own roles, by **exact ARN**: the function and state machine roles in the security
  account (``IR_RESPONDER_ROLE_ARNS``), the forensics role (``IR_FORENSICS_ROLE_ARN``) and the custody signer role
  (``IR_CUSTODY_SIGNER_ROLE_ARN``), and in the account acted in the member role (``IR_MEMBER_ROLE_NAME``), its
  read-only twin (``<name>-read``) and the deny-all profile's role, all at path ``/``. Never by a name prefix: an attacker's ``ir-responder-backdoor`` role, or an ``ir-responder-member`` in an account or path the
  stacks did not make, is contained like any other;
* its ARN matches one of the configured patterns (``IR_PROTECTED_PRINCIPALS``, shell-style wildcards). IAM names
  are case-insensitive, so patterns are too, and a pattern without a path matches the name under any path:
  ``arn:aws:iam::*:role/BreakGlass*`` matches ``arn:aws:iam::111122223333:role/emergency/breakglassAdmin``;
* it carries the protection tag (``IR_PROTECTED_TAG``, default ``ir:protected``) with value ``true`` **and**
  CloudTrail shows the tag was set by another principal before the incident's window (`tag_claim`). A tag the
  principal set on itself, or one set during the window, protects nothing. A tag whose origin cannot be
  established (older than event history's 90 days, lookup failed) is an unverified claim: the target is not
  contained automatically, and the notification says how to contain it.

**A protection tag asks for approval, not immunity.** Once a person approved the incident's containment
(`approved`: the containment level ``approval``, answered ``approve``), the tag - verified or not - no longer
stops it; the responder's own roles, the configured patterns and an unreadable tag set still do. Without an
approval a tagged target is left untouched as before, and the notification says how to contain it with one (a
manual request with ``"level": "approval"``).

Fail closed: if the tags could not be read, or the deployment's protection configuration is missing or unusable
(``Settings.protection_config_error``), the caller must not contain the target (see `UNVERIFIABLE`). The
responder's own roles are recognised even then.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping

from responder.settings import DENY_ALL_ROLE_NAME, Settings

UNVERIFIABLE = "protection could not be verified"
TAG_UNVERIFIED = "protection tag could not be verified"


def own_role_arns(settings: Settings, *, partition: str = "aws", account: str | None = None) -> frozenset[str]:
    """The exact ARNs of the responder's own roles that can appear in `account` (the account acted in)."""
    arns = set(settings.responder_role_arns)
    for arn in (settings.forensics_role_arn, settings.custody_signer_role_arn):
        if arn:
            arns.add(arn)
    if account:
        arns.update(f"arn:{partition}:iam::{account}:role/{name}"
                    for name in (settings.member_role_name, settings.member_role_name + "-read",
                                 settings.member_role_name + "-release", DENY_ALL_ROLE_NAME))
    return frozenset(arns)


def _without_path(arn: str) -> str | None:
    """``arn:...:role/a/b/Name`` -> ``arn:...:role/Name`` (None when the ARN has no path)."""
    head, sep, resource = arn.partition(":iam::")
    if not sep or resource.count("/") < 2:
        return None
    account_type, _, rest = resource.partition("/")
    return f"{head}{sep}{account_type}/{rest.rsplit('/', 1)[-1]}"


def pattern_matches(arn: str, pattern: str) -> bool:
    """Case-insensitive shell-style match; a pattern naming no path matches the name under any path."""
    candidates = [arn.lower()]
    short = _without_path(arn)
    if short:
        candidates.append(short.lower())
    return any(fnmatchcase(c, pattern.lower()) for c in candidates)


def tagged(tags: Mapping[str, str] | None, settings: Settings) -> bool:
    return bool(tags) and any(k.lower() == settings.protected_tag.lower() and str(v).strip().lower() == "true"
                              for k, v in tags.items())


def approved(incident: Mapping[str, Any] | None) -> bool:
    """Did a person approve this incident's containment (AwaitApproval answered ``approve``)?"""
    answer = (incident or {}).get("approval")
    return isinstance(answer, dict) and answer.get("decision") == "approve"


def protected_reason(arn: str, tags: Mapping[str, str] | None, settings: Settings, *, account: str | None = None,
                     partition: str = "aws", tag_verdict: "TagClaim | None" = None,
                     approved: bool = False) -> str | None:
    """Why `arn` must not be contained, or None. `tags=None` means the tags could not be read: protected.
    `tag_verdict`: what CloudTrail says about the protection tag (`tag_claim`); None means a tag alone
    protects (instances: EC2 tags of an instance are not claimed by the attacker's own principal). `approved`: a
    person approved the containment: the protection tag no longer protects."""
    if arn in own_role_arns(settings, partition=partition, account=account):
        return f"{arn} is one of the responder's own roles"
    if settings.protection_config_error:
        return UNVERIFIABLE
    for pattern in settings.protected_principals:
        if pattern_matches(arn, pattern):
            return f"{arn} matches the protected pattern {pattern}"
    if tags is None:
        return UNVERIFIABLE
    if tagged(tags, settings) and not approved:
        if tag_verdict is None or tag_verdict.verdict == "protects":
            return f"{arn} is tagged {settings.protected_tag}=true" + (
                f" ({tag_verdict.why})" if tag_verdict else "")
        if tag_verdict.verdict == "unverified":
            return TAG_UNVERIFIED
    return None


# -- who set the tag, and when (CloudTrail) ------------------------------------------------------------------
@dataclass(frozen=True)
class TagClaim:
    verdict: str  # protects | void (the tag protects nothing) | unverified
    why: str
    event: dict[str, Any] | None = None


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _sets_tag(record: dict[str, Any], kind: str, name: str, settings: Settings) -> bool:
    params = record.get("requestParameters") or {}
    if not isinstance(params, dict):
        return False
    key = "userName" if kind == "user" else "roleName"
    if str(params.get(key) or "").lower() != name.lower():
        return False
    tags = params.get("tags") or params.get("Tags") or []
    if isinstance(tags, dict):
        tags = [tags]
    for tag in tags if isinstance(tags, list) else []:
        if not isinstance(tag, dict):
            continue
        key_, value = tag.get("key", tag.get("Key")), tag.get("value", tag.get("Value"))
        if str(key_ or "").lower() == settings.protected_tag.lower() and str(value or "").strip().lower() == "true":
            return True
    return False


def _actor(record: dict[str, Any]) -> str:
    who = record.get("userIdentity") or {}
    issuer = ((who.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    return str(issuer or who.get("arn") or "")


def tag_claim(arn: str, kind: str, name: str, events: Iterable[dict[str, Any]] | None, *, window_start: str,
              settings: Settings, complete: bool = True) -> TagClaim:
    """Does the protection tag on `arn` (an IAM `kind` user or role named `name`) protect it? `events`: the
    account's CloudTrail records (LookupEvents' ``CloudTrailEvent``) of the calls that can set tags on it (Tag*,
    Create* with tags), any order; None when the lookup failed. `complete`: the lookup was not truncated.

    The newest event that set the tag to ``true`` decides: made by the principal itself (its own key, or a
    session of the role) -> void; made at or after `window_start` (the incident's window) -> void; made by
    another principal before the window -> protects. No such event (older than event history, or not found in
    the pages read) -> unverified."""
    if events is None:
        return TagClaim("unverified", "CloudTrail could not be read to check who set the tag")
    setting = [e for e in events if isinstance(e, dict) and _sets_tag(e, kind, name, settings)]
    setting.sort(key=lambda e: str(e.get("eventTime") or ""), reverse=True)
    if not setting:
        why = "no CloudTrail event sets the tag (older than event history's 90 days" + (
            ")" if complete else ", or beyond the pages read)")
        return TagClaim("unverified", why)
    newest = setting[0]
    actor, when = _actor(newest), _when(newest.get("eventTime"))
    summary = {"eventName": newest.get("eventName"), "eventTime": newest.get("eventTime"), "actor": actor}
    if actor.lower() == arn.lower():
        return TagClaim("void", f"{arn} set the tag on itself ({newest.get('eventName')} at "
                                f"{newest.get('eventTime')})", summary)
    start = _when(window_start)
    if when is None or start is None:
        return TagClaim("unverified", "the tag's CloudTrail event has no usable time", summary)
    if when >= start:
        return TagClaim("void", f"the tag was set during the incident's window by {actor or '?'} "
                                f"({newest.get('eventName')} at {newest.get('eventTime')})", summary)
    return TagClaim("protects", f"set by {actor or '?'} at {newest.get('eventTime')}, before the incident", summary)
