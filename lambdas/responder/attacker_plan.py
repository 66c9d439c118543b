"""The attacker's plan, read from the compromised principal's CloudTrail events (field runbook, step 2: "The
interesting rows cluster: CreateAccessKey, AttachUserPolicy, AssumeRole, GetSecretValue ... Each represents a step
in the attacker's plan"). Pure: no AWS call here.

Input: the principal's event records in LookupEvents' shape (``EventId``, ``EventName``, ``EventTime``,
``EventSource``, ``Username``, ``CloudTrailEvent`` - the CloudTrail record, a JSON string or already parsed), from
whichever source found them (event history, Athena, CloudTrail Lake: responder.scope).

Output (`derive`):

* ``pivots`` - what the principal **minted**, each citing the event that shows it (``eventId``):

  ==============  ===================================  =================================================
  kind            event (eventSource)                  what is taken from the record
  ==============  ===================================  =================================================
  assumed_role    AssumeRole (sts)                     ``responseElements.assumedRoleUser``: the role's
                                                       id (``AROA...`` before ``:``) and ARN account/name
  created_key     CreateAccessKey (iam)                ``responseElements.accessKey``: key id, user name
  created_user    CreateUser (iam)                     ``responseElements.user``: user name and ``AIDA`` id
  created_role    CreateRole (iam)                     ``responseElements.role``: role name and ``AROA`` id
  login_profile   CreateLoginProfile (iam)             ``responseElements.loginProfile.userName``
                  UpdateLoginProfile (iam)             ``requestParameters.userName`` (no response
                                                       elements: IAM returns none)
  mfa_device      EnableMFADevice (iam)                ``requestParameters.userName``, ``serialNumber``
  kms_grant       CreateGrant (kms)                    ``responseElements.grantId`` and ``keyId`` (the key
                                                       ARN: CloudTrail adds it since December 2022),
                                                       ``requestParameters.granteePrincipal``
  ==============  ===================================  =================================================

* ``reads`` - the secrets and parameters it read: GetSecretValue / BatchGetSecretValue (secretsmanager,
  ``requestParameters.secretId`` / ``secretIdList``, the ARN from ``resources`` when CloudTrail names it),
  GetParameter / GetParameters (ssm, ``requestParameters.name`` / ``names``).

**The attacker shapes what it can.** A record is used only when all of these hold, else it is counted in
``dropped`` with the reason: it is a record of *this* principal (its ``userIdentity`` is the principal's access key,
user or role - a record of someone else never leads anywhere); the call succeeded (no ``errorCode``); it was
received by the incident's account (``recipientAccountId``); the event source is the one AWS uses for that event
name; its time is inside the incident window. What a pivot names comes from ``responseElements`` (what AWS says it
created), never from ``requestParameters``, except for the two IAM calls that have no response elements
(UpdateLoginProfile, EnableMFADevice) and the grantee of a grant. A pivot only *proposes*: responder.pivots verifies
each one in IAM / KMS (the id, the creation time) and passes it through the protection gate before any change.

Bounds: at most `MAX_EVENTS` records are examined (a capture holds at most 500: scope.MAX_PAGES x 50 x 2 Regions),
at most `MAX_PIVOTS` pivots and `MAX_READS` reads are kept (duplicates merged; the rest counted in ``leftOut``).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from responder.scope import _parse, window

MAX_EVENTS = 2000
MAX_PIVOTS = 25
MAX_READS = 50
# CloudTrail delivers an event within about 5 minutes of the call; a record a little after the cut-off is still
# the window's (the cut-off is when containment started).
WINDOW_SLACK = timedelta(minutes=15)

PIVOT_EVENTS = {
    "AssumeRole": ("sts.amazonaws.com", "assumed_role"),
    "CreateAccessKey": ("iam.amazonaws.com", "created_key"),
    "CreateUser": ("iam.amazonaws.com", "created_user"),
    "CreateRole": ("iam.amazonaws.com", "created_role"),
    "CreateLoginProfile": ("iam.amazonaws.com", "login_profile"),
    "UpdateLoginProfile": ("iam.amazonaws.com", "login_profile"),
    "EnableMFADevice": ("iam.amazonaws.com", "mfa_device"),
    "CreateGrant": ("kms.amazonaws.com", "kms_grant"),
}
READ_EVENTS = {
    "GetSecretValue": ("secretsmanager.amazonaws.com", "secret"),
    "BatchGetSecretValue": ("secretsmanager.amazonaws.com", "secret"),
    "GetParameter": ("ssm.amazonaws.com", "parameter"),
    "GetParameters": ("ssm.amazonaws.com", "parameter"),
}


def _parse_time(value: Any) -> datetime | None:
    """A record's time: ISO text (CloudTrail's eventTime), a datetime or epoch seconds (boto3, LookupEvents)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    return _parse(value)


def record_of(event: Any) -> dict[str, Any] | None:
    """The CloudTrail record inside one event record (a JSON string or parsed), or None when unusable."""
    if not isinstance(event, dict):
        return None
    raw = event.get("CloudTrailEvent")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def _text(value: Any, limit: int = 2048) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= limit else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_principal(who: dict[str, Any], identity: dict[str, Any], account: str | None) -> bool:
    """Is this ``userIdentity`` the incident's principal? By the finding's access key when there is one (exactly
    the stolen credentials), else by the user's name / the session issuer's role name in the incident's account."""
    key = identity.get("accessKeyId")
    if key:
        return who.get("accessKeyId") == key
    name, kind = identity.get("name"), identity.get("type")
    if not name or who.get("accountId") not in (None, account):
        return False
    if kind == "IAMUser":
        return who.get("type") == "IAMUser" and str(who.get("userName") or "").lower() == name.lower()
    if kind == "AssumedRole":
        issuer = _dict(_dict(who.get("sessionContext")).get("sessionIssuer"))
        return who.get("type") == "AssumedRole" and str(issuer.get("userName") or "").lower() == name.lower()
    if kind == "Root":
        return who.get("type") == "Root"
    return False


def _arn_parts(arn: Any) -> tuple[str, str, str, str] | None:
    """(partition, service, account, resource) of an ARN, or None."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return parts[1], parts[2], parts[4], parts[5]


def _pivot(kind: str, record: dict, event: dict, **facts: Any) -> dict[str, Any]:
    return {"kind": kind, "eventId": record.get("eventID") or event.get("EventId"),
            "eventName": record.get("eventName"), "eventTime": record.get("eventTime"),
            "region": record.get("awsRegion"), **{k: v for k, v in facts.items() if v is not None}}


def pivot_of(record: dict[str, Any], event: dict[str, Any], account: str, partition: str) -> dict | str:
    """The pivot one verified record proposes, or why it proposes none."""
    name = record.get("eventName")
    request, response = _dict(record.get("requestParameters")), _dict(record.get("responseElements"))
    kind = PIVOT_EVENTS[name][1]
    if kind == "assumed_role":
        user = _dict(response.get("assumedRoleUser"))
        role_id = (_text(user.get("assumedRoleId")) or "").split(":", 1)[0]
        parts = _arn_parts(user.get("arn"))  # arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION
        if not role_id.startswith("AROA") or not parts or not parts[3].startswith("assumed-role/"):
            return "no assumedRoleUser in the response"
        role_name = parts[3].split("/")[1]
        role_arn = f"arn:{parts[0]}:iam::{parts[2]}:role/{role_name}"
        return _pivot(kind, record, event, target=role_arn, account=parts[2], roleName=role_name, roleId=role_id,
                      session=_text(user.get("arn")))
    if kind == "created_key":
        key = _dict(response.get("accessKey"))
        key_id, user = _text(key.get("accessKeyId"), 128), _text(key.get("userName"), 128)
        if not key_id or not user:
            return "no accessKey in the response"
        return _pivot(kind, record, event, target=key_id, account=account, userName=user,
                      userArn=f"arn:{partition}:iam::{account}:user/{user}")
    if kind in ("created_user", "created_role"):
        what = "user" if kind == "created_user" else "role"
        made = _dict(response.get(what))
        name_, id_ = _text(made.get(f"{what}Name"), 128), _text(made.get(f"{what}Id"), 128)
        if not name_ or not id_:
            return f"no {what} in the response"
        return _pivot(kind, record, event, target=_text(made.get("arn")) or
                      f"arn:{partition}:iam::{account}:{what}/{name_}", account=account,
                      **{f"{what}Name": name_, f"{what}Id": id_})
    if kind == "login_profile":
        user = _text(_dict(response.get("loginProfile")).get("userName"), 128) if name == "CreateLoginProfile" \
            else _text(request.get("userName"), 128)
        if not user:
            return "no user name in the record"
        return _pivot(kind, record, event, target=f"arn:{partition}:iam::{account}:user/{user}", account=account,
                      userName=user)
    if kind == "mfa_device":
        user, serial = _text(request.get("userName"), 128), _text(request.get("serialNumber"), 256)
        if not user or not serial:
            return "no user name / serial number in the record"
        return _pivot(kind, record, event, target=serial, account=account, userName=user)
    # kms_grant
    grant_id, key_arn = _text(response.get("grantId"), 256), response.get("keyId")
    parts = _arn_parts(key_arn)
    if not grant_id or not parts or parts[1] != "kms" or not parts[3].startswith("key/"):
        return "no grantId / key ARN in the response"
    return _pivot(kind, record, event, target=f"{key_arn}/grant/{grant_id}", account=parts[2], keyArn=key_arn,
                  grantId=grant_id, grantee=_text(request.get("granteePrincipal")),
                  region=key_arn.split(":")[3] or record.get("awsRegion"))


def reads_of(record: dict[str, Any], account: str, partition: str) -> list[dict[str, Any]]:
    """The secrets / parameters one verified read record names (each by ARN where it can be known)."""
    name, region = record.get("eventName"), record.get("awsRegion") or ""
    request = _dict(record.get("requestParameters"))
    kind = READ_EVENTS[name][1]
    cited = {"eventId": record.get("eventID"), "eventName": name, "eventTime": record.get("eventTime"),
             "region": region}
    resources = [r.get("ARN") or r.get("arn") for r in record.get("resources") or [] if isinstance(r, dict)]
    if kind == "secret":
        ids = request.get("secretIdList") if name == "BatchGetSecretValue" else [request.get("secretId")]
        out = []
        for secret in ids if isinstance(ids, list) else []:
            secret = _text(secret)
            if not secret:
                continue
            arn = secret if secret.startswith("arn:") else next(
                (r for r in resources if isinstance(r, str) and f":secret:{secret}" in r),
                f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secret}")
            out.append(dict(cited, kind="secret", arn=arn, name=secret))
        return out
    names = request.get("names") if name == "GetParameters" else [request.get("name")]
    out = []
    for parameter in names if isinstance(names, list) else []:
        parameter = _text(parameter)
        if not parameter:
            continue
        arn = parameter if parameter.startswith("arn:") else \
            f"arn:{partition}:ssm:{region}:{account}:parameter/{parameter.lstrip('/')}"
        out.append(dict(cited, kind="parameter", arn=arn, name=parameter))
    return out


def derive(events: Iterable[Any], incident: dict[str, Any], identity: dict[str, Any]) -> dict[str, Any]:
    """``{"pivots", "reads", "examined", "dropped": {reason: count}, "leftOut": {"pivots", "reads"}}`` from one
    principal's events (see the module docstring)."""
    account, partition = incident.get("accountId") or "", incident.get("partition") or "aws"
    span = incident.get("window") or (window(incident["cutoff"]) if incident.get("cutoff") else {})
    start, end = _parse_time(span.get("start")), _parse_time(span.get("end") or incident.get("cutoff"))
    pivots: dict[tuple, dict] = {}
    reads: dict[str, dict] = {}
    dropped: dict[str, int] = {}
    left = {"pivots": 0, "reads": 0}
    examined = 0

    def drop(why: str) -> None:
        dropped[why] = dropped.get(why, 0) + 1

    for event in events:
        if examined >= MAX_EVENTS:
            drop(f"beyond the first {MAX_EVENTS} records")
            continue
        examined += 1
        name = event.get("EventName") if isinstance(event, dict) else None
        record = record_of(event)
        if record is None:
            drop("no CloudTrail record")
            continue
        name = record.get("eventName") or name
        wanted = PIVOT_EVENTS.get(name) or READ_EVENTS.get(name)
        if wanted is None:
            continue
        if record.get("eventSource") != wanted[0]:
            drop(f"{name} from another event source")
            continue
        if record.get("errorCode"):
            drop(f"{name} failed")
            continue
        if record.get("recipientAccountId") not in (None, account):
            drop("received by another account")
            continue
        if not is_principal(_dict(record.get("userIdentity")), identity, account):
            drop("made by another principal")
            continue
        when = _parse_time(record.get("eventTime"))
        if when is None or (start and when < start) or (end and when > end + WINDOW_SLACK):
            drop("outside the incident window")
            continue
        if name in READ_EVENTS:
            for read in reads_of(record, account, partition):
                if read["arn"] in reads:
                    continue
                if len(reads) >= MAX_READS:
                    left["reads"] += 1
                    continue
                reads[read["arn"]] = read
            continue
        found = pivot_of(record, event, account, partition)
        if isinstance(found, str):
            drop(f"{name}: {found}")
            continue
        key = (found["kind"], found["target"])
        if key in pivots:
            continue
        if len(pivots) >= MAX_PIVOTS:
            left["pivots"] += 1
            continue
        pivots[key] = found
    ordered = sorted(pivots.values(), key=lambda p: (str(p.get("eventTime") or ""), p["kind"]))
    return {"pivots": ordered, "reads": sorted(reads.values(), key=lambda r: str(r.get("eventTime") or "")),
            "examined": examined, "dropped": dropped, "leftOut": left}
