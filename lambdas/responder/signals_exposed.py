"""Exposed access keys reported outside GuardDuty: the Trusted Advisor "Exposed Access Keys" check and the AWS Health
event ``AWS_RISK_CREDENTIALS_EXPOSED``. Pure: the incident for the identity branch, which quarantines the key's owner
and deactivates the key (the owner is the user IAM names for the key, confirmed by the key being in its
``ListAccessKeys``: a user name in the event that names someone else leads to the key's real owner).

**Trusted Advisor** (EventBridge ``source`` ``aws.trustedadvisor``, ``detail-type`` "Trusted Advisor Check Item
Refresh Notification", published in us-east-1 only; the AWS Security Incident Response Guide, appendix B, shows its
``detail``)::

    {"check-name": "Exposed Access Keys", "status": "ERROR", "uuid": "...", "resource_id": "",
     "check-item-detail": {"Case ID": "...", "User Name (IAM or Root)": "jane-roe-test",
                           "Access Key ID": "AKIAIOSFODNN7EXAMPLE", "Fraud Type": "Exposed", ...}}

``status`` ERROR or WARN acts; OK (the item was resolved) is ``not_handled``. A root key (user name ``<root_account>``
or ``root``) cannot be contained through IAM: manual steps.

**AWS Health** (``source`` ``aws.health``, ``detail-type`` "AWS Health Event", ``eventTypeCode``
``AWS_RISK_CREDENTIALS_EXPOSED``; an IAM event is a *global* Health event, delivered in us-east-1 with us-west-2 as
the backup Region)::

    {"eventArn": "arn:aws:health:global::event/IAM/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_...",
     "service": "IAM", "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "eventTypeCategory": "issue",
     "affectedEntities": [{"entityValue": "AKIAIOSFODNN7EXAMPLE"}], ...}

It names the key only: the owner is the one IAM names.

Both are accepted as the whole EventBridge event (the account is its ``account``) or as the bare ``detail`` pasted in
the console, which names no account: then ``accountId`` must be given beside it (``{"accountId": "...",
"check-name": ...}``). Every field the attacker can shape (user name, key id, account, case and event ids) is matched
whole in ASCII; anything else is InvalidInput naming the field, before anything changes. IAM is global: the incident
acts from the event's region when the deployment covers it, else from the deployment's first region (the event's is
kept in ``signal.eventRegion``; a pasted detail names none).
"""
from __future__ import annotations

import re
from typing import Any, Callable

from responder.errors import InvalidInput

TRUSTED_ADVISOR = "aws.trustedadvisor"
TA_DETAIL_TYPE = "Trusted Advisor Check Item Refresh Notification"
TA_CHECK = "Exposed Access Keys"
HEALTH = "aws.health"
HEALTH_DETAIL_TYPE = "AWS Health Event"
HEALTH_CODE = "AWS_RISK_CREDENTIALS_EXPOSED"
ACTING = ("ERROR", "WARN")
RESOLVED = ("OK",)
ROOT_NAMES = ("<root_account>", "root")
MAX_KEYS = 50
IAM_REGION = "us-east-1"  # where a deployment without a region list acts for a pasted detail (IAM is global)

_A = re.ASCII
_ACCOUNT = re.compile(r"[0-9]{12}", _A)
_IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}", _A)
_ACCESS_KEY = re.compile(r"(AKIA|ASIA)[A-Z0-9]{12,124}", _A)
_CASE = re.compile(r"[A-Za-z0-9._-]{1,128}", _A)
_HEALTH_ARN = re.compile(r"arn:aws[a-z-]*:health:[a-z0-9-]*::event/(?:[A-Za-z0-9_-]+/){0,2}([A-Za-z0-9_-]{1,128})", _A)

TA_KEYS = {"check-name", "check-item-detail", "status", "resource_id", "uuid"}
HEALTH_KEYS = {"eventArn", "service", "eventTypeCode", "eventTypeCategory", "eventScopeCode", "communicationId",
               "startTime", "endTime", "lastUpdatedTime", "statusCode", "eventRegion", "eventDescription",
               "eventMetadata", "affectedEntities", "affectedAccount", "page", "totalPages"}


def _field(value: Any, field: str, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    if len(value) > 256 or not pattern.fullmatch(value):
        raise InvalidInput(field, f"{value[:80]!r} is not {what}")
    return value


def is_bare_ta(event: dict) -> bool:
    return "check-name" in event or "check-item-detail" in event


def is_bare_health(event: dict) -> bool:
    return "eventTypeCode" in event or "affectedEntities" in event


def _envelope(event: dict, source: str, detail_type: str) -> tuple[dict, str, str | None]:
    """(detail, account, event region) of a whole EventBridge event."""
    if event.get("detail-type") != detail_type:
        raise InvalidInput("detail-type", f"must be {detail_type!r} for source {source}, got "
                                          f"{str(event.get('detail-type'))[:80]!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidInput("detail", "must be an object")
    account = _field(event.get("account"), "account", _ACCOUNT, "a 12-digit account id")
    region = event.get("region")
    return detail, account, region if isinstance(region, str) else None


def _bare(event: dict, allowed: set[str], account_key: str | None = None) -> tuple[dict, str]:
    detail = {k: v for k, v in event.items() if k != "accountId"}
    unknown = sorted(set(detail) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], "unknown key in a pasted detail (paste the whole event, or the detail with "
                                       "accountId beside it)")
    account = event.get("accountId")
    if account is None and account_key:
        account = event.get(account_key)
    if account is None:
        raise InvalidInput("accountId", "a pasted detail names no account: add \"accountId\": \"<12 digits>\" beside "
                                        "it, or paste the whole EventBridge event")
    return detail, _field(account, "accountId", _ACCOUNT, "a 12-digit account id")


def _open(event: dict, bare: bool, *, source: str, detail_type: str, keys: set[str], kind: tuple[str, str],
          account_key: str | None = None) -> tuple[dict, str, str | None, str]:
    """(detail, account, event region, field prefix) of a whole event or a pasted detail, whose `kind` field
    (name, value) says it is the one handled."""
    if bare:
        (detail, account), region, p = _bare(event, keys, account_key), None, ""
    else:
        (detail, account, region), p = _envelope(event, source, detail_type), "detail."
    field, wanted = kind
    if detail.get(field) != wanted:
        raise InvalidInput(f"{p}{field}", f"only {wanted!r} is handled, got {str(detail.get(field))[:80]!r}")
    return detail, account, region, p


def trusted_advisor(event: dict, *, bare: bool) -> dict[str, Any]:
    """{incidentKey, account, eventRegion, identities, disposition reason or "", signal} of a Trusted Advisor event."""
    detail, account, region, p = _open(event, bare, source=TRUSTED_ADVISOR, detail_type=TA_DETAIL_TYPE,
                                       keys=TA_KEYS, kind=("check-name", TA_CHECK))
    item = detail.get("check-item-detail")
    if not isinstance(item, dict):
        raise InvalidInput(f"{p}check-item-detail", "must be an object")
    ip = f"{p}check-item-detail."
    user = _field(item.get("User Name (IAM or Root)"), f"{ip}User Name (IAM or Root)",
                  re.compile(r"<root_account>|[A-Za-z0-9_+=,.@-]{1,64}", _A), "an IAM user name")
    key = _field(item.get("Access Key ID"), f"{ip}Access Key ID", _ACCESS_KEY, "an access key id")
    case = item.get("Case ID")
    if case not in (None, ""):
        case = _field(case, f"{ip}Case ID", _CASE, "a case id")
    uuid = detail.get("uuid")
    if uuid not in (None, ""):
        uuid = _field(uuid, f"{p}uuid", _CASE, "an event uuid")
    if not case and not uuid:
        raise InvalidInput(f"{ip}Case ID", "is required (or the detail's uuid): the incident is named after it")
    status = detail.get("status")
    if status not in ACTING + RESOLVED:
        raise InvalidInput(f"{p}status", f"must be one of {', '.join(ACTING + RESOLVED)}, got {str(status)[:40]!r}")
    identity = ({"type": "Root", "name": "root", "accessKeyId": key} if user.lower() in ROOT_NAMES
                else {"type": "IAMUser", "name": user, "accessKeyId": key})
    signal = {"kind": "trusted_advisor", "check": TA_CHECK, "status": status, "caseId": case or None,
              "fraudType": str(item.get("Fraud Type") or "")[:64] or None, "eventRegion": region}
    return {"incidentKey": f"ta-{case or uuid}", "account": account, "eventRegion": region,
            "identities": [identity],
            "notHandled": "the Trusted Advisor check item is resolved (status OK)" if status in RESOLVED else "",
            "reason": f"Trusted Advisor: access key {key} of {user} exposed ({signal['fraudType'] or 'Exposed'})",
            "signal": {k: v for k, v in signal.items() if v not in (None, "")}}


def health(event: dict, *, bare: bool) -> dict[str, Any]:
    """The same for an AWS Health AWS_RISK_CREDENTIALS_EXPOSED event."""
    detail, account, region, p = _open(event, bare, source=HEALTH, detail_type=HEALTH_DETAIL_TYPE, keys=HEALTH_KEYS,
                                       kind=("eventTypeCode", HEALTH_CODE), account_key="affectedAccount")
    affected = detail.get("affectedAccount")
    if affected not in (None, "") and _field(affected, f"{p}affectedAccount", _ACCOUNT,
                                             "a 12-digit account id") != account:
        raise InvalidInput(f"{p}affectedAccount", f"names account {affected}, not the event's {account}")
    match = _HEALTH_ARN.fullmatch(detail.get("eventArn") or "") if isinstance(detail.get("eventArn"), str) else None
    if not match:
        raise InvalidInput(f"{p}eventArn", f"{str(detail.get('eventArn'))[:120]!r} is not an AWS Health event ARN")
    entities = detail.get("affectedEntities")
    if not isinstance(entities, list) or not entities:
        raise InvalidInput(f"{p}affectedEntities", "must list the exposed access key(s)")
    if len(entities) > MAX_KEYS:
        raise InvalidInput(f"{p}affectedEntities", f"at most {MAX_KEYS} keys per event")
    identities, keys = [], []
    for i, entity in enumerate(entities):
        if not isinstance(entity, dict):
            raise InvalidInput(f"{p}affectedEntities[{i}]", "must be an object")
        key = _field(entity.get("entityValue"), f"{p}affectedEntities[{i}].entityValue", _ACCESS_KEY,
                     "an access key id")
        if key not in keys:
            keys.append(key)
            identities.append({"type": "IAMUser", "accessKeyId": key})
    signal = {"kind": "health", "eventTypeCode": HEALTH_CODE, "eventArn": detail["eventArn"][:256],
              "eventRegion": region}
    return {"incidentKey": f"health-{match.group(1)}",
            "account": account, "eventRegion": region, "identities": identities, "notHandled": "",
            "reason": f"AWS Health {HEALTH_CODE}: access key(s) {', '.join(keys[:3])} exposed",
            "signal": {k: v for k, v in signal.items() if v not in (None, "")}}


def parse(event: dict, *, bare: str | None) -> dict[str, Any]:
    """`bare`: "ta" / "health" for a pasted detail, None for a whole event (its ``source`` decides)."""
    if bare == "ta" or (bare is None and event.get("source") == TRUSTED_ADVISOR):
        return trusted_advisor(event, bare=bare is not None)
    return health(event, bare=bare is not None)


def acting_region(event_region: str | None, regions: tuple[str, ...] | None, check: Callable[[Any, str], str]) -> str:
    """Where the incident acts: IAM is global, so the event's region when the deployment covers it (or covers
    everything), else the deployment's first region. `check` validates a region string (triage's)."""
    if event_region and (regions is None or event_region in regions):
        return check(event_region, "region")
    if regions:
        return regions[0]
    return IAM_REGION
