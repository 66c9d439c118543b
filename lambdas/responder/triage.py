"""Triage: turn any accepted execution input into one normalized incident. Pure: no AWS calls.

Accepted inputs (docs/ARCHITECTURE.md, section 1):

1. the EventBridge event exactly as GuardDuty sends it (``detail-type`` "GuardDuty Finding");
2. a bare finding: the ``detail`` object of such an event, or what ``aws guardduty get-findings`` prints
   (PascalCase keys, optionally wrapped in ``{"Findings": [finding]}`` with exactly one finding);
3. a manual request ``{"manual": {...}}``.

Anything else raises `InvalidInput` naming the bad field, before anything changes anywhere.

The incident (a JSON dict) carries:

``incidentId``   ``gd-<finding id>`` for findings; the request's ``incidentId`` or ``manual-<execution name>``.
``origin``       ``guardduty`` or ``manual``.
``accountId`` / ``region`` / ``partition``  where to act.
``identities``   ``[{"type": "IAMUser"|"AssumedRole"|"Root"|"FederatedUser"|..., "name", "accessKeyId"}]``.
``instances``    ``["i-..."]``.
``disposition``  ``respond`` or ``not_handled`` (with ``dispositionReason``).
``dryRun``       plan only.
``cutoff``       UTC now, rounded up to the second: credentials issued before it are revoked.
``containment``  the containment level (responder.levels.decide: the deployment's policy, or a manual request's
                 ``level``): ``{level, rule, approvalTimeoutSeconds, onTimeout, evidenceBeforeApproval}``.
``eventFirstSeen``  the finding's first sighting as GuardDuty reports it (when present): the scope window's start.

`triage` is the whole task (Triage's handler only wires it): normalize, the deployment's switches (`switches`), the
claim of the incident record, the scope window.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Callable

from responder import levels, scope, signals_exposed, signals_groups, signals_s3, signals_sequence
from responder.errors import IncidentRecordError, InvalidInput
from responder.settings import Settings

SEVERITY_THRESHOLD = 4.0

# Every identifier is matched whole and in ASCII (`fullmatch`, `re.ASCII`): `$` would accept a trailing newline,
# and without ASCII `\d`/`\w` accept Arabic-Indic digits and Cyrillic look-alike letters.
_A = re.ASCII
_ACCOUNT = re.compile(r"[0-9]{12}", _A)
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}", _A)
_FINDING_ID = re.compile(r"[A-Za-z0-9._-]{1,128}", _A)
_SIGNAL_ID = re.compile(r"[A-Za-z0-9._-]{1,140}", _A)  # ta-<case id>, health-<event id>
_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", _A)
_IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}", _A)
_ACCESS_KEY = re.compile(r"[A-Z0-9]{16,128}", _A)
_PRINCIPAL_ID = re.compile(r"[A-Za-z0-9_+=,.@:-]{1,256}", _A)
_INSTANCE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?", _A)
_PARTITION = re.compile(r"aws(-cn|-us-gov|-iso[a-z-]*)?", _A)
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9._-]{1,80}", _A)
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})",
                        _A)

# userType values of accessKeyDetails (GuardDuty): what the identity branch can do with each.
IDENTITY_TYPES = ("IAMUser", "AssumedRole", "Root", "FederatedUser", "Role", "AWSAccount", "AWSService", "Unknown")
HANDLED_RESOURCES = ("AccessKey", "Instance", signals_s3.RESOURCE_TYPE, signals_sequence.RESOURCE_TYPE)
MANUAL_KEYS = {"accountId", "region", "reason", "iamUsers", "roles", "instances", "incidentId", "dryRun", "partition",
               "level"}
LEVELS = ("automatic", "approval", "observe")  # responder.levels
MAX_TARGETS = 50
SAMPLE_INSTANCE = "i-99999999"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def cutoff_from(now: datetime) -> str:
    """UTC now rounded *up* to the whole second: a session issued during this second is revoked too."""
    seconds = math.ceil(now.timestamp())
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- small validators that name the field ---------------------------------------------------------------
def _obj(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be an object, got {type(value).__name__}")
    return value


def _str(value: Any, field: str, pattern: re.Pattern | None = None, *, max_len: int = 1024) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    if len(value) > max_len:
        raise InvalidInput(field, f"must be at most {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidInput(field, f"{value[:80]!r} is not valid (expected {pattern.pattern})")
    return value


def _region(value: Any, field: str, covered: tuple[str, ...] | None) -> str:
    """A well-formed region that this deployment covers. A region it does not cover would half-work (clients in
    that region, evidence copies naming keys of another): refused up front, naming the regions that are covered."""
    region = _str(value, field, _REGION)
    if covered is not None and region not in covered:
        raise InvalidInput(field, f"{region!r} is not covered by this deployment (covered: "
                                  f"{', '.join(covered) or 'none'}): deploy the responder in {region} to act there")
    return region


def _req(obj: dict, key: str, prefix: str) -> Any:
    if key not in obj or obj[key] is None:
        raise InvalidInput(f"{prefix}{key}", "is required")
    return obj[key]


def _severity(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(field, "must be a number")
    if not 0 <= value <= 10:
        raise InvalidInput(field, "must be between 0 and 10")
    return float(value)


def _camel(value: Any) -> Any:
    """PascalCase API/CLI shape -> the camelCase shape EventBridge delivers."""
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:] if isinstance(k, str) else k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


# -- entry point ----------------------------------------------------------------------------------------
def normalize(event: Any, *, execution_name: str = "", now: datetime | None = None,
              regions: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The normalized incident for `event`, or InvalidInput naming the first bad field. `regions`: the regions
    the deployment covers (`Settings.regions`); a request or finding for any other region is refused (None: no
    check)."""
    now = now or _now()
    if not isinstance(event, dict):
        raise InvalidInput("$", f"input must be a JSON object, got {type(event).__name__}")
    if not event:
        raise InvalidInput("$", "input is empty: expected a GuardDuty event, a finding or {\"manual\": {...}}")
    if "manual" in event:
        extra = sorted(set(event) - {"manual"})
        if extra:
            raise InvalidInput(extra[0], "unknown key beside 'manual'")
        return _manual(event["manual"], execution_name, now, regions)
    if "analyze" in event:
        return _analyze(event, now)
    if "release" in event:
        return _release(event, now)
    if event.get("source") in (signals_exposed.TRUSTED_ADVISOR, signals_exposed.HEALTH):
        return _exposed(event, None, now, regions)
    if "detail-type" in event or "source" in event or "detail" in event:
        return _event(event, now, regions)
    if signals_exposed.is_bare_ta(event):
        return _exposed(event, "ta", now, regions)
    if signals_exposed.is_bare_health(event):
        return _exposed(event, "health", now, regions)
    if "Findings" in event or "findings" in event:
        findings = event.get("Findings", event.get("findings"))
        if not isinstance(findings, list) or len(findings) != 1:
            raise InvalidInput("Findings", "must hold exactly one finding per execution")
        return _finding(_camel(_obj(findings[0], "Findings[0]")), "Findings[0].", now, regions)
    if "SchemaVersion" in event or "Resource" in event:
        return _finding(_camel(event), "", now, regions)
    if "schemaVersion" in event or "resource" in event:
        return _finding(event, "", now, regions)
    raise InvalidInput("$", "not a GuardDuty event (detail-type), a finding (resource) or a manual request (manual)")


def _event(event: dict, now: datetime, regions: tuple[str, ...] | None) -> dict[str, Any]:
    detail_type = _req(event, "detail-type", "")
    if detail_type != "GuardDuty Finding":
        raise InvalidInput("detail-type", f"must be 'GuardDuty Finding', got {str(detail_type)[:80]!r}")
    source = _req(event, "source", "")
    if source != "aws.guardduty":
        raise InvalidInput("source", f"must be 'aws.guardduty', got {str(source)[:80]!r}")
    return _finding(_obj(_req(event, "detail", ""), "detail"), "detail.", now, regions)


def _finding(detail: dict, p: str, now: datetime, regions: tuple[str, ...] | None) -> dict[str, Any]:
    finding_id = _str(_req(detail, "id", p), f"{p}id", _FINDING_ID)
    account = _str(_req(detail, "accountId", p), f"{p}accountId", _ACCOUNT)
    region = _region(_req(detail, "region", p), f"{p}region", regions)
    partition = _str(detail.get("partition") or "aws", f"{p}partition", _PARTITION)
    finding_type = _str(_req(detail, "type", p), f"{p}type", max_len=256)
    severity = _severity(_req(detail, "severity", p), f"{p}severity")
    resource = _obj(_req(detail, "resource", p), f"{p}resource")
    resource_type = _str(_req(resource, "resourceType", f"{p}resource."), f"{p}resource.resourceType", max_len=64)
    service = detail.get("service")
    service = {} if service is None else _obj(service, f"{p}service")
    count = service.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInput(f"{p}service.count", "must be a non-negative integer")
    additional = service.get("additionalInfo") or {}
    last_seen = service.get("eventLastSeen")
    if last_seen not in (None, ""):
        last_seen = _str(last_seen, f"{p}service.eventLastSeen", _TIMESTAMP, max_len=64)

    incident = _base(
        incident_id=f"gd-{finding_id}",
        origin="guardduty",
        account=account,
        region=region,
        partition=partition,
        reason=str(detail.get("title") or finding_type)[:512],
        now=now,
    )
    incident.update(
        findingId=finding_id,
        findingType=finding_type,
        findingArn=str(detail.get("arn", ""))[:512],
        severity=severity,
        count=count,
        updatedAt=str(detail.get("updatedAt", ""))[:64],
        resourceType=resource_type,
    )
    if last_seen:
        incident["eventLastSeen"] = last_seen
    first_seen = service.get("eventFirstSeen")
    if isinstance(first_seen, str) and first_seen:  # not validated: a bad value only narrows the window (scope)
        incident["eventFirstSeen"] = first_seen[:64]

    if isinstance(additional, dict) and additional.get("sample") is True:
        return _not_handled(incident, "sample finding (CreateSampleFindings): it names no real resource")
    if service.get("archived") is True:
        return _not_handled(incident, "the finding is archived")
    if severity < SEVERITY_THRESHOLD:
        return _not_handled(incident, f"severity {severity} is below {SEVERITY_THRESHOLD}")
    if resource_type not in HANDLED_RESOURCES:
        return _not_handled(incident, f"resource type {resource_type} has no automated containment")

    rp = f"{p}resource."
    if resource_type == "AccessKey":
        details = _obj(_req(resource, "accessKeyDetails", rp), f"{rp}accessKeyDetails")
        incident["identities"].append(_identity(details, f"{rp}accessKeyDetails."))
    if resource_type == signals_s3.RESOURCE_TYPE:
        incident["signal"] = {"kind": "s3", "buckets": signals_s3.buckets(resource, rp)}
        details, why = signals_s3.actor(resource, rp)
        if details is None:
            return _not_handled(incident, why)
        incident["identities"].append(_identity(details, f"{rp}accessKeyDetails."))
    if resource_type == signals_sequence.RESOURCE_TYPE:
        _sequence(incident, service, f"{p}service.")
    instance = resource.get("instanceDetails")
    if resource_type == "Instance" or instance is not None:
        instance = _obj(_req(resource, "instanceDetails", rp), f"{rp}instanceDetails")
        instance_id = _str(_req(instance, "instanceId", f"{rp}instanceDetails."), f"{rp}instanceDetails.instanceId")
        if instance_id == SAMPLE_INSTANCE and resource_type == "Instance":
            return _not_handled(incident, "sample finding: instance i-99999999 does not exist")
        if instance_id != SAMPLE_INSTANCE:
            _str(instance_id, f"{rp}instanceDetails.instanceId", _INSTANCE)
            incident["instances"].append(instance_id)
    return incident


def _sequence(incident: dict[str, Any], service: dict, p: str) -> None:
    """The targets of an attack sequence (responder.signals_sequence) into `incident`."""
    detection = _obj(_req(service, "detection", p), f"{p}detection")
    sp = f"{p}detection.sequence."
    sequence = _obj(_req(detection, "sequence", f"{p}detection."), f"{p}detection.sequence")
    found = signals_sequence.targets(sequence, sp, account=incident["accountId"], region=incident["region"],
                                     cap=MAX_TARGETS, identity=_identity)
    incident["identities"] += found.identities
    incident["instances"] += found.instances
    if found.groups:
        incident["autoScalingGroups"] = found.groups
    incident["signal"] = found.signal(sequence, signals_sequence.signal_count(sequence, sp))
    if not (found.identities or found.instances or found.groups):
        _not_handled(incident, "the attack sequence names no access key, principal, instance or Auto Scaling group "
                               "in this account and region")


def _exposed(event: dict, bare: str | None, now: datetime, regions: tuple[str, ...] | None) -> dict[str, Any]:
    """A Trusted Advisor exposed-key or AWS Health AWS_RISK_CREDENTIALS_EXPOSED event (responder.signals_exposed)."""
    found = signals_exposed.parse(event, bare=bare)
    _str(found["incidentKey"], "incidentId", _SIGNAL_ID, max_len=140)
    incident = _base(
        incident_id=found["incidentKey"],
        origin=found["signal"]["kind"],
        account=found["account"],
        region=signals_exposed.acting_region(found["eventRegion"], regions,
                                             lambda value, field: _region(value, field, regions)),
        partition="aws",
        reason=found["reason"][:512],
        now=now,
    )
    incident["identities"] = found["identities"]
    incident["signal"] = found["signal"]
    if found["notHandled"]:
        return _not_handled(incident, found["notHandled"])
    return incident


def _identity(details: dict, p: str) -> dict[str, Any]:
    user_type = _str(_req(details, "userType", p), f"{p}userType", max_len=64)
    identity: dict[str, Any] = {"type": user_type if user_type in IDENTITY_TYPES else "Unknown"}
    if user_type != identity["type"]:
        identity["reportedType"] = user_type[:64]
    name = details.get("userName")
    if user_type in ("IAMUser", "AssumedRole", "FederatedUser"):
        identity["name"] = _str(_req(details, "userName", p), f"{p}userName", _IAM_NAME)
    elif isinstance(name, str) and name:
        identity["name"] = name[:128]
    key = details.get("accessKeyId")
    if key not in (None, ""):
        identity["accessKeyId"] = _str(key, f"{p}accessKeyId", _ACCESS_KEY)
    principal = details.get("principalId")
    if principal not in (None, ""):
        identity["principalId"] = _str(principal, f"{p}principalId", _PRINCIPAL_ID, max_len=256)
    return identity


def target_names(request: dict, key: str, pattern: re.Pattern, prefix: str) -> list[str]:
    """A request's list of target names at `key` (manual and release requests): each checked, duplicates dropped,
    at most MAX_TARGETS; a bad one is `InvalidInput` naming `<prefix><key>[i]`."""
    values = request.get(key, [])
    if not isinstance(values, list):
        raise InvalidInput(f"{prefix}{key}", "must be a list of strings")
    if len(values) > MAX_TARGETS:
        raise InvalidInput(f"{prefix}{key}", f"at most {MAX_TARGETS} entries per request")
    out: list[str] = []
    for i, value in enumerate(values):
        value = _str(value, f"{prefix}{key}[{i}]", pattern)
        if value not in out:
            out.append(value)
    return out


def _manual(request: Any, execution_name: str, now: datetime, regions: tuple[str, ...] | None) -> dict[str, Any]:
    p = "manual."
    request = _obj(request, "manual")
    unknown = sorted(set(request) - MANUAL_KEYS)
    if unknown:
        raise InvalidInput(f"{p}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(MANUAL_KEYS))})")
    account = _str(_req(request, "accountId", p), f"{p}accountId", _ACCOUNT)
    region = _region(_req(request, "region", p), f"{p}region", regions)
    partition = _str(request.get("partition") or "aws", f"{p}partition", _PARTITION)
    reason = _str(_req(request, "reason", p), f"{p}reason", max_len=1024)
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput(f"{p}dryRun", "must be true or false")
    if request.get("incidentId") is not None:
        incident_id = _str(request["incidentId"], f"{p}incidentId", _INCIDENT_ID)
    else:
        name = execution_name if _EXECUTION_NAME.fullmatch(execution_name or "") else ""
        if not name:
            raise InvalidInput(f"{p}incidentId", "is required when the execution has no usable name")
        incident_id = f"manual-{name}"[:64]

    def names(key: str, pattern: re.Pattern) -> list[str]:
        return target_names(request, key, pattern, p)

    users, roles, instances = names("iamUsers", _IAM_NAME), names("roles", _IAM_NAME), names("instances", _INSTANCE)
    if not (users or roles or instances):
        raise InvalidInput(f"{p}iamUsers", "name at least one target in iamUsers, roles or instances")
    incident = _base(
        incident_id=incident_id, origin="manual", account=account, region=region, partition=partition,
        reason=reason, now=now,
    )
    incident["dryRun"] = dry_run
    if request.get("level") is not None:
        incident["requestedLevel"] = _str(request["level"], f"{p}level", re.compile("|".join(LEVELS)), max_len=16)
    incident["identities"] = [{"type": "IAMUser", "name": u} for u in users] + [
        {"type": "AssumedRole", "name": r} for r in roles
    ]
    incident["instances"] = instances
    return incident


def _analyze(event: dict, now: datetime) -> dict[str, Any]:
    """A request to open an incident's disks on a forensic workstation (responder.workstation)."""
    from responder import workstation

    extra = sorted(set(event) - {"analyze"})
    if extra:
        raise InvalidInput(extra[0], "unknown key beside 'analyze'")
    return workstation.parse(event["analyze"], string=_str, incident_pattern=_INCIDENT_ID,
                             now_fields={"cutoff": cutoff_from(now),
                                         "triagedAt": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})


def _release(event: dict, now: datetime) -> dict[str, Any]:
    """A request to release an incident's containment of named targets (responder.release)."""
    from responder import release

    extra = sorted(set(event) - {"release"})
    if extra:
        raise InvalidInput(extra[0], "unknown key beside 'release'")
    return release.parse(event["release"], string=_str, target_names=target_names,
                         now_fields={"cutoff": cutoff_from(now),
                                     "triagedAt": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})


def _base(*, incident_id: str, origin: str, account: str, region: str, partition: str, reason: str,
          now: datetime) -> dict[str, Any]:
    return {
        "incidentId": incident_id,
        "origin": origin,
        "accountId": account,
        "region": region,
        "partition": partition,
        "reason": reason,
        "dryRun": False,
        "disposition": "respond",
        "dispositionReason": "",
        "identities": [],
        "instances": [],
        "cutoff": cutoff_from(now),
        "triagedAt": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _not_handled(incident: dict[str, Any], why: str) -> dict[str, Any]:
    incident["disposition"] = "not_handled"
    incident["dispositionReason"] = why
    incident["identities"] = []
    incident["instances"] = []
    return incident


def _analysis(incident: dict[str, Any], *, execution_id: str, settings: Settings,
              lookup: Callable[[str], dict[str, Any] | None] | None) -> dict[str, Any]:
    """An analyze request: no claim (the incident is answered; its record's status and results stay as they are),
    only its record read (`lookup(incident id)`): account, region, the instances answered (responder.workstation).
    Observe-only makes it a plan like every other request."""
    from responder import workstation

    if not settings.incident_table or lookup is None:
        raise IncidentRecordError("IR_INCIDENT_TABLE is not configured: the incident cannot be read")
    incident = workstation.with_record(incident, lookup(incident["incidentId"]))
    if settings.regions and incident["region"] not in settings.regions:
        raise InvalidInput("analyze.incidentId", f"the incident's region {incident['region']} is not covered by "
                                                 "this deployment")
    incident.update(switches(settings))
    incident["executionId"] = execution_id
    incident["record"] = {"trigger": "analyze"}
    return incident


def _released(incident: dict[str, Any], *, execution_id: str, settings: Settings,
              lookup: Callable[[str], dict[str, Any] | None] | None) -> dict[str, Any]:
    """A release request: no claim (the incident is answered; its record's status stays the response's), only its
    record read (`lookup(incident id)`): account, region, and the targets its containment acted on
    (responder.release). Observe-only makes it a plan like every other request."""
    from responder import release

    if not settings.incident_table or lookup is None:
        raise IncidentRecordError("IR_INCIDENT_TABLE is not configured: the incident cannot be read")
    incident = release.with_record(incident, lookup(incident["incidentId"]))
    if settings.regions and incident["region"] not in settings.regions:
        raise InvalidInput("release.incidentId", f"the incident's region {incident['region']} is not covered by "
                                                 "this deployment")
    incident.update(switches(settings))
    incident["executionId"] = execution_id
    incident["record"] = {"trigger": "release"}
    return incident


# -- the task -------------------------------------------------------------------------------------------
def switches(settings: Settings) -> dict[str, Any]:
    """What the deployment's configuration decides for every incident: observe-only makes it a dry run (every
    change planned, none made); a protection configuration error is carried so that every target ends
    ``protection_unverified`` and the notification says why (fail closed)."""
    out: dict[str, Any] = {}
    if settings.observe_only:
        out.update(dryRun=True, observeOnly=True)
    if settings.protection_config_error:
        out["protectionConfigError"] = settings.protection_config_error
    return out


def containment(incident: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The incident's containment level (responder.levels); an unusable policy fails closed (approval)."""
    if settings.containment_levels_error:
        return levels.fail_closed(settings.containment_levels_error)
    policy = settings.containment_levels or levels.parse(None)
    return levels.decide(policy, incident, requested=incident.pop("requestedLevel", None))


def triage(raw: Any, *, execution_name: str, execution_id: str, settings: Settings,
           claim: Callable[[dict[str, Any]], dict[str, Any]], now: datetime | None = None,
           groups: Callable[[dict[str, Any]], signals_groups.Read] | None = None,
           lookup: Callable[[str], dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """Triage of one execution input: the normalized incident with the deployment's switches, claimed before
    anything changes (`claim(incident)`: `records.claim` on the deployment's table, returning the pinned cut-off
    and the record's trigger, or the duplicate), then the scope window from the pinned cut-off back to the
    finding's first sighting. InvalidInput first: bad input is refused before the record is touched. An attack
    sequence's Auto Scaling groups are read before the claim (`groups(incident)`: the reader of their instances in
    the incident's account, responder.signals_groups), so the record names every instance answered."""
    incident = normalize(raw, execution_name=execution_name, now=now, regions=settings.regions or None)
    if incident.get("origin") == "analyze":
        return _analysis(incident, execution_id=execution_id, settings=settings, lookup=lookup)
    if incident.get("origin") == "release":
        return _released(incident, execution_id=execution_id, settings=settings, lookup=lookup)
    incident["containment"] = containment(incident, settings)
    if incident["containment"]["level"] == "observe":
        incident.update(dryRun=True, observeOnly=True)
    incident.update(switches(settings))
    if incident.get("autoScalingGroups") and groups is not None:
        incident = signals_groups.expand(incident, groups(incident), MAX_TARGETS)
    incident["executionId"] = execution_id
    if not settings.incident_table:
        raise IncidentRecordError("IR_INCIDENT_TABLE is not configured: the incident cannot be claimed")
    incident.update(claim(incident))
    incident["window"] = scope.window(incident["cutoff"], scope.first_seen(incident))
    return incident
