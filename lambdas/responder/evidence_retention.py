"""What marks a snapshot as this responder's evidence, and which of it ages out.

**Tags** (the seed's schema): ``ir:incident``, ``ir:source`` (the ARN of what it was taken or copied from),
``ir:collected-by`` (the execution ARN), ``ir:hash`` (``sha256:<hex>`` of the block list, written once verified).

**Descriptions** (immutable once the snapshot exists, parsed by retention)::

    <incident> instance <instance-id> evidence source[, follow-up]
    <incident> instance <instance-id> evidence sharing-copy of <snapshot-id> (<volume-id>)[, follow-up]
    <incident> instance <instance-id> evidence forensics-copy of <snapshot-id> (<volume-id>)[, follow-up]

A *collection* is one incident's snapshots of the instance (the crash-consistent set and its copies). It is a
**first collection** unless the instance was already isolated by another incident when this incident reached it;
then it is a **follow-up**, and its descriptions end in ``, follow-up``. The mark is in the description because a
description cannot be changed after the snapshot exists, while tags can: nobody can turn pre-wipe evidence into
a follow-up. A collection without the mark counts as first (when in doubt, evidence is kept).

**Retention**, per instance and per side (member account: source snapshots and re-encrypted copies; forensics
account: the forensics copies), keeps ``IR_SNAPSHOT_RETENTION`` (7) collections:

1. the current collection, always;
2. every first collection, always: findings on an instance that is already isolated never age out the evidence
   taken when it was isolated, however many follow;
3. the newest follow-ups, until 7 collections are kept in all (none when 7 or more first collections exist).

Everything else is deleted, whole collections only (part of a set would be an incomplete image); for a one-volume
instance that is at most 7 snapshots per side unless more than 6 first collections exist. Only snapshots this
responder created for this instance are ever candidates: owned by the account, ``ir:collected-by`` an execution of
this same state machine, ``ir:incident`` equal to the incident named in the description, which names this
instance and an evidence kind of that side; on the forensics side ``ir:source`` must name the member account.
Snapshots still pending, and snapshots under an EBS Snapshot Lock, are never deleted. Pure functions: the phase
machine (`responder.evidence`) reads the candidates and makes the deletions.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Iterable

from responder.arns import arn_account, tag_map

TAG_INCIDENT = "ir:incident"
TAG_SOURCE = "ir:source"
TAG_COLLECTED_BY = "ir:collected-by"
TAG_HASH = "ir:hash"
EVIDENCE_TAGS = (TAG_INCIDENT, TAG_SOURCE, TAG_COLLECTED_BY, TAG_HASH)
TAG_QUARANTINE = "ir:quarantine"  # on the instance, written by the isolation: isolated / incomplete

MEMBER_KINDS = ("source", "sharing-copy")
FORENSICS_KINDS = ("forensics-copy",)
FOLLOW_UP = ", follow-up"
# Lock states under which a snapshot cannot be deleted (DescribeLockedSnapshots; `expired` can be).
LOCKED_STATES = frozenset({"compliance", "compliance-cooloff", "governance"})
_DESCRIPTION = re.compile(
    r"^(?P<incident>\S+) instance (?P<instance>i-[0-9a-f]+) evidence (?P<kind>source|sharing-copy|forensics-copy)"
    r"(?: of (?P<of>snap-[0-9a-f]+) \((?P<volume>vol-[0-9a-f]+)\))?(?P<followup>, follow-up)?$"
)


def set_description(incident_id: str, instance_id: str, *, follow_up: bool = False) -> str:
    return f"{incident_id} instance {instance_id} evidence source" + (FOLLOW_UP if follow_up else "")


def copy_description(kind: str, incident_id: str, instance_id: str, of: str, volume_id: str, *,
                     follow_up: bool = False) -> str:
    return f"{incident_id} instance {instance_id} evidence {kind} of {of} ({volume_id})" + (FOLLOW_UP if follow_up else "")


def parse_description(text: str | None) -> dict[str, Any] | None:
    """{incident, instance, kind, of, volume, first} of an evidence description, or None."""
    match = _DESCRIPTION.match(text or "")
    if not match:
        return None
    found: dict[str, Any] = match.groupdict()
    found["first"] = not found.pop("followup")
    return found


def candidate_filters(instance_id: str) -> list[dict]:
    """DescribeSnapshots filters for every snapshot that may be evidence of the instance (`ours` decides)."""
    return [{"Name": "tag-key", "Values": [TAG_COLLECTED_BY]},
            {"Name": "description", "Values": [f"* instance {instance_id} evidence *"]}]


def collector_prefix(execution_id: str | None) -> str | None:
    """`arn:...:execution:<state machine>:` of this responder's executions, or None if unknown."""
    parts = (execution_id or "").split(":")
    if len(parts) < 8 or parts[0] != "arn" or parts[2] != "states" or parts[5] != "execution":
        return None
    return ":".join(parts[:7]) + ":"


def ours(snapshot: dict, *, instance_id: str, kinds: Iterable[str], prefix: str | None,
         source_account: str | None = None) -> bool:
    """Did this responder create this snapshot as evidence of this instance (on this side)?"""
    tags = tag_map(snapshot.get("Tags"))
    described = parse_description(snapshot.get("Description"))
    if not prefix or not described or described["instance"] != instance_id or described["kind"] not in kinds:
        return False
    if tags.get(TAG_INCIDENT) != described["incident"] or not tags.get(TAG_COLLECTED_BY, "").startswith(prefix):
        return False
    return source_account is None or arn_account(tags.get(TAG_SOURCE)) == source_account


def _started(snapshot: dict) -> float:
    value = snapshot.get("StartTime")
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def collections(snapshots: list[dict], *, instance_id: str, kinds: Iterable[str], prefix: str | None,
                source_account: str | None = None) -> dict[str, dict[str, Any]]:
    """This responder's evidence of the instance on one side, by incident:
    ``{incident: {"snapshots": [...], "first": bool, "started": epoch seconds of its newest snapshot}}``.
    A collection is first unless every one of its snapshots is marked follow-up."""
    kinds = tuple(kinds)
    found: dict[str, dict[str, Any]] = {}
    for snap in snapshots:
        if ours(snap, instance_id=instance_id, kinds=kinds, prefix=prefix, source_account=source_account):
            group = found.setdefault(tag_map(snap["Tags"])[TAG_INCIDENT],
                                     {"snapshots": [], "first": False, "started": float("-inf")})
            group["snapshots"].append(snap)
            group["first"] = group["first"] or parse_description(snap.get("Description"))["first"]
            group["started"] = max(group["started"], _started(snap))
    return found


def retention_plan(snapshots: list[dict], *, keep: int, current_incident: str, instance_id: str,
                   kinds: Iterable[str], prefix: str | None, source_account: str | None = None,
                   planned_collection: bool = False, locked: Iterable[str] = ()) -> dict[str, Any]:
    """Which evidence snapshots of the instance to delete on one side (the rules in this module's docstring).
    `planned_collection` counts the current incident even if none of its snapshots exist yet (dry run);
    `locked`: snapshot ids under a lock, never deleted (listed in ``locked``)."""
    groups = collections(snapshots, instance_id=instance_id, kinds=kinds, prefix=prefix,
                         source_account=source_account)
    if planned_collection or current_incident in groups:
        groups.setdefault(current_incident, {"snapshots": [], "first": True, "started": float("inf")})
    keep = max(1, int(keep))
    kept = [inc for inc in groups if inc == current_incident or groups[inc]["first"]]
    follow_ups = sorted((inc for inc in groups if inc not in kept),
                        key=lambda inc: (groups[inc]["started"], inc), reverse=True)
    kept += follow_ups[:max(0, keep - len(kept))]
    order = sorted(groups, key=lambda inc: (inc == current_incident, groups[inc]["started"], inc), reverse=True)
    kept = [inc for inc in order if inc in kept]
    aged = [inc for inc in order if inc not in kept]
    locked = set(locked)
    doomed = [s for inc in aged for s in sorted(groups[inc]["snapshots"], key=lambda s: s["SnapshotId"])
              if s.get("State") != "pending"]
    return {"kept": kept, "aged": aged, "first": [inc for inc in kept if groups[inc]["first"]],
            "delete": [s for s in doomed if s["SnapshotId"] not in locked],
            "locked": [s["SnapshotId"] for s in doomed if s["SnapshotId"] in locked]}


def recent_collection(snapshots: list[dict], *, instance_id: str, current_incident: str, prefix: str | None,
                      now: float, interval_seconds: float) -> dict[str, Any] | None:
    """The newest collection of the instance by another incident (member side, sources) that started less
    than `interval_seconds` before `now` and has no snapshot in error: ``{"incident", "snapshotIds",
    "ageSeconds"}``, or None."""
    groups = collections(snapshots, instance_id=instance_id, kinds=("source",), prefix=prefix)
    usable = [(group["started"], inc) for inc, group in groups.items()
              if inc != current_incident and all(s.get("State") != "error" for s in group["snapshots"])
              and now - group["started"] < interval_seconds]
    if not usable:
        return None
    started, incident = max(usable)
    return {"incident": incident, "ageSeconds": int(max(0, now - started)),
            "snapshotIds": sorted(s["SnapshotId"] for s in groups[incident]["snapshots"])}
