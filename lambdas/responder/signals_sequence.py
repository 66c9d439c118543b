"""GuardDuty Extended Threat Detection attack sequences: every key, instance and Auto Scaling group of the sequence
becomes a target. Pure (the groups' instances are read from AWS later: responder.signals_groups).

An attack sequence finding (severity 9+, e.g. ``AttackSequence:IAM/CompromisedCredentials``,
``AttackSequence:EC2/CompromisedInstanceGroup``) has the top-level ``resource`` ``{"resourceType": "AttackSequence"}``;
what it is about is in ``service.detection.sequence`` (GuardDuty API reference: Sequence, Actor, ResourceV2, Signal):

``actors[]``     ``{id, user: {name, uid, type, credentialUid, account: {uid}}, session: {uid, issuer, ...}}``: the
                 principals that made the calls. Each is contained like an AccessKey finding's actor (the identity
                 branch resolves it from AWS: the key's owner in IAM, the session's issuing role).
``resources[]``  ResourceV2 ``{uid, name, accountId, region, resourceType, data}``: ``ACCESS_KEY`` (``uid`` the key id,
                 ``data.accessKey`` {principalId, userName, userType}) and ``EC2_INSTANCE`` (``uid`` the instance id)
                 become targets; ``AUTOSCALING_AUTO_SCALING_GROUP`` becomes a group whose instances are read from
                 Auto Scaling (never from ``data...ec2InstanceUids``, which the finding carries as strings);
                 ``S3_BUCKET`` is recorded. Other types are counted.
``signals[]``    the findings and events the sequence correlates: counted only.

A resource or actor of another account, or an instance in another region, is recorded (``signal.elsewhere``) and not
acted on: the responder acts where the finding says it happened. A group whose name is not plain ASCII (Auto Scaling
allows almost any character; the attacker may have created it) is recorded as skipped, with the command to run by
hand, rather than refusing the whole sequence. Every list is bounded by ``MAX_TARGETS`` (responder.triage): what is
over it is left out, counted in ``signal.omitted`` and named in the notification.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from responder.errors import InvalidInput

RESOURCE_TYPE = "AttackSequence"
MAX_LISTED = 10  # buckets / elsewhere / skipped entries kept in the incident (the rest counted)
_A = re.ASCII
_ACCOUNT = re.compile(r"[0-9]{12}", _A)
_INSTANCE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?", _A)
_INSTANCE_ARN = re.compile(r"arn:aws[a-z-]*:ec2:[a-z0-9-]+:[0-9]{12}:instance/(i-[0-9a-f]{8}([0-9a-f]{9})?)", _A)
_GROUP = re.compile(r"[A-Za-z0-9._ -]{1,255}", _A)
_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:autoscaling:[a-z0-9-]+:[0-9]{12}:autoScalingGroup:[0-9a-f-]+:"
                        r"autoScalingGroupName/(.{1,255})", _A)
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):role/(?:[A-Za-z0-9_+=,.@/-]*/)?([A-Za-z0-9_+=,.@-]{1,64})",
                       _A)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", _A)


def _list(value: Any, field: str, limit: int = 400) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(field, "must be a list")
    if len(value) > limit:  # GuardDuty's own maximum (API reference, Sequence): more is not a real finding
        raise InvalidInput(field, f"at most {limit} entries (GuardDuty's maximum)")
    return value


def _text(value: Any, field: str, limit: int = 256) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(field, f"must be a string of at most {limit} characters")
    return value


def _account_of(value: Any, field: str) -> str | None:
    text = _text(value, field, 12)
    if text is not None and not _ACCOUNT.fullmatch(text):
        raise InvalidInput(field, f"{text!r} is not an account id")
    return text


class Targets:
    """What the sequence asks the responder to contain, built by `targets`."""

    def __init__(self, cap: int):
        self.cap = cap
        self.identities: list[dict] = []
        self.instances: list[str] = []
        self.groups: list[str] = []
        self.buckets: list[str] = []
        self.elsewhere: list[str] = []
        self.skipped: list[str] = []
        self.omitted: dict[str, int] = {}
        self.other: dict[str, int] = {}

    def _add(self, kind: str, items: list, item: Any) -> None:
        if item in items:
            return
        if len(items) >= (MAX_LISTED if kind in ("buckets", "elsewhere", "skipped") else self.cap):
            self.omitted[kind] = self.omitted.get(kind, 0) + 1
            return
        items.append(item)

    def identity(self, found: dict) -> None:
        key = found.get("accessKeyId")
        for known in self.identities:
            if (key and known.get("accessKeyId") == key) or (
                    not key and (known["type"], known.get("name")) == (found["type"], found.get("name"))):
                for k, v in found.items():
                    known.setdefault(k, v)
                return
        self._add("identities", self.identities, found)

    def signal(self, sequence: dict, signals: int) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "attack_sequence", "signals": signals}
        uid = sequence.get("uid")
        if isinstance(uid, str) and uid:
            out["sequenceId"] = uid[:128]
        for key, value in (("autoScalingGroups", self.groups), ("buckets", [{"name": b} for b in self.buckets]),
                           ("elsewhere", self.elsewhere), ("skipped", self.skipped), ("omitted", self.omitted),
                           ("otherResources", self.other)):
            if value:
                out[key] = value
        return out


def targets(sequence: dict, p: str, *, account: str, region: str, cap: int,
            identity: Callable[[dict, str], dict]) -> Targets:
    """The targets of `sequence` (``service.detection.sequence``, field prefix `p`) in `account` / `region`.
    `identity(details, prefix)` validates accessKeyDetails-shaped dicts into the incident's identity (triage's)."""
    found = Targets(cap)
    for i, resource in enumerate(_list(sequence.get("resources"), f"{p}resources")):
        f = f"{p}resources[{i}]"
        if not isinstance(resource, dict):
            raise InvalidInput(f, "must be an object")
        kind = _text(resource.get("resourceType"), f"{f}.resourceType", 64) or "?"
        uid = _text(resource.get("uid"), f"{f}.uid", 1024)
        owner = _account_of(resource.get("accountId"), f"{f}.accountId")
        where = _text(resource.get("region"), f"{f}.region", 32)
        if kind not in ("ACCESS_KEY", "EC2_INSTANCE", "AUTOSCALING_AUTO_SCALING_GROUP", "S3_BUCKET"):
            found.other[kind[:64]] = found.other.get(kind[:64], 0) + 1
            continue
        if owner and owner != account:
            found._add("elsewhere", found.elsewhere, f"{kind} {str(uid)[:128]} in account {owner}")
            continue
        data = resource.get("data") if isinstance(resource.get("data"), dict) else {}
        if kind == "ACCESS_KEY":
            details = data.get("accessKey") if isinstance(data.get("accessKey"), dict) else {}
            found.identity(_renamed(identity, {"userType": details.get("userType") or "IAMUser",
                                               "userName": details.get("userName") or resource.get("name"),
                                               "accessKeyId": uid, "principalId": details.get("principalId")},
                                    f"{f}.", _KEY_FIELDS))
        elif kind == "EC2_INSTANCE":
            instance = _instance_id(uid, f"{f}.uid")
            if where and where != region:
                found._add("elsewhere", found.elsewhere, f"instance {instance} in region {where}")
            else:
                found._add("instances", found.instances, instance)
        elif kind == "AUTOSCALING_AUTO_SCALING_GROUP":
            name = resource.get("name") or ""
            match = _GROUP_ARN.fullmatch(uid or "")
            name = name or (match.group(1) if match else "")
            if where and where != region:
                found._add("elsewhere", found.elsewhere, f"Auto Scaling group {str(name)[:128]} in region {where}")
            elif isinstance(name, str) and _GROUP.fullmatch(name):
                found._add("autoScalingGroups", found.groups, name)
            else:
                found._add("skipped", found.skipped,
                           f"{f}: Auto Scaling group name is not plain ASCII; isolate its instances by hand "
                           "(aws autoscaling describe-auto-scaling-groups, then a manual request naming them)")
        else:
            name = resource.get("name") or (uid or "").rsplit(":", 1)[-1]
            if isinstance(name, str) and _BUCKET.fullmatch(name):
                found._add("buckets", found.buckets, name)
    for i, actor in enumerate(_list(sequence.get("actors"), f"{p}actors")):
        f = f"{p}actors[{i}]"
        if not isinstance(actor, dict):
            raise InvalidInput(f, "must be an object")
        user = actor.get("user")
        if not isinstance(user, dict):
            continue  # a process or network actor: nothing IAM can contain
        owner = _account_of((user.get("account") or {}).get("uid") if isinstance(user.get("account"), dict)
                            else None, f"{f}.user.account.uid")
        user_type = _text(user.get("type"), f"{f}.user.type", 64) or "Unknown"
        name = user.get("name")
        session = actor.get("session") if isinstance(actor.get("session"), dict) else {}
        issuer = _ROLE_ARN.fullmatch(session.get("issuer") or "") if isinstance(session.get("issuer"), str) else None
        if user_type == "AssumedRole" and issuer:
            owner = owner or issuer.group(1)
            name = issuer.group(2)  # the role, not the session name
        if owner and owner != account:
            found._add("elsewhere", found.elsewhere, f"{user_type} {str(name)[:128]} of account {owner}")
            continue
        found.identity(_renamed(identity, {"userType": user_type, "userName": name,
                                           "accessKeyId": user.get("credentialUid"), "principalId": user.get("uid")},
                                f"{f}.", _ACTOR_FIELDS))
    return found


def _renamed(identity: Callable[[dict, str], dict], details: dict, prefix: str, names: dict[str, str]) -> dict:
    """`identity(details)` with an InvalidInput naming the finding's own field (``user.name``, not ``userName``)."""
    try:
        return identity(details, "")
    except InvalidInput as exc:
        raise InvalidInput(prefix + names.get(exc.field, exc.field), exc.problem) from None


_KEY_FIELDS = {"userType": "data.accessKey.userType", "userName": "data.accessKey.userName", "accessKeyId": "uid",
               "principalId": "data.accessKey.principalId"}
_ACTOR_FIELDS = {"userType": "user.type", "userName": "user.name", "accessKeyId": "user.credentialUid",
                 "principalId": "user.uid"}


def _instance_id(uid: str | None, field: str) -> str:
    if uid and _INSTANCE.fullmatch(uid):
        return uid
    match = _INSTANCE_ARN.fullmatch(uid or "")
    if match:
        return match.group(1)
    raise InvalidInput(field, f"{str(uid)[:80]!r} is not an instance id or ARN")


def signal_count(sequence: dict, p: str) -> int:
    return len(_list(sequence.get("signals"), f"{p}signals", 100))
