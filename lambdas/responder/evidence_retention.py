"""What marks a snapshot as this responder's evidence, and which of it ages out.

**Tags** (the seed's schema): ``ir:incident``, ``ir:source`` (the ARN of what it was taken or copied from),
``ir:collected-by`` (the execution ARN), ``ir:hash`` (``sha256:<hex>`` of the block list, written once verified).

**Descriptions** (immutable once the snapshot exists, parsed by retention)::

    <incident> instance <instance-id> evidence source
    <incident> instance <instance-id> evidence sharing-copy of <snapshot-id> (<volume-id>)
    <incident> instance <instance-id> evidence forensics-copy of <snapshot-id> (<volume-id>)

**Retention** keeps the newest ``IR_SNAPSHOT_RETENTION`` (7) evidence *collections* of an instance on each side
(member account: source snapshots and re-encrypted copies; forensics account: the forensics copies) and deletes
older ones. A collection is one incident's snapshots of the instance (the crash-consistent set and its copies):
deleting part of a set would leave an incomplete image, so whole collections age out; for a one-volume instance
that is exactly 7 snapshots per side. Only snapshots this responder created for this instance are ever deleted:
owned by the account, ``ir:collected-by`` an execution of this same state machine, ``ir:incident`` equal to the
incident named in the description, which names this instance and an evidence kind of that side; on the
forensics side ``ir:source`` must name the member account. Pure functions: the phase machine
(`responder.evidence`) reads the candidates and makes the deletions.
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

MEMBER_KINDS = ("source", "sharing-copy")
FORENSICS_KINDS = ("forensics-copy",)
_DESCRIPTION = re.compile(
    r"^(?P<incident>\S+) instance (?P<instance>i-[0-9a-f]+) evidence (?P<kind>source|sharing-copy|forensics-copy)"
    r"(?: of (?P<of>snap-[0-9a-f]+) \((?P<volume>vol-[0-9a-f]+)\))?$"
)


def set_description(incident_id: str, instance_id: str) -> str:
    return f"{incident_id} instance {instance_id} evidence source"


def copy_description(kind: str, incident_id: str, instance_id: str, of: str, volume_id: str) -> str:
    return f"{incident_id} instance {instance_id} evidence {kind} of {of} ({volume_id})"


def parse_description(text: str | None) -> dict[str, str] | None:
    match = _DESCRIPTION.match(text or "")
    return match.groupdict() if match else None


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


def retention_plan(snapshots: list[dict], *, keep: int, current_incident: str, instance_id: str,
                   kinds: Iterable[str], prefix: str | None, source_account: str | None = None,
                   planned_collection: bool = False) -> dict[str, Any]:
    """Which evidence snapshots to delete so that the newest `keep` collections (incidents) of the instance
    remain on one side. The current incident is always kept; `planned_collection` counts it even if none of its
    snapshots exist yet (dry run). Snapshots still pending are never deleted."""
    kinds = tuple(kinds)
    groups: dict[str, list[dict]] = {}
    for snap in snapshots:
        if ours(snap, instance_id=instance_id, kinds=kinds, prefix=prefix, source_account=source_account):
            groups.setdefault(tag_map(snap["Tags"])[TAG_INCIDENT], []).append(snap)
    if planned_collection:
        groups.setdefault(current_incident, [])
    newest = {inc: max((_started(s) for s in snaps), default=float("inf")) for inc, snaps in groups.items()}
    order = sorted(groups, key=lambda inc: (inc == current_incident, newest[inc], inc), reverse=True)
    keep = max(1, int(keep))
    kept, aged = order[:keep], order[keep:]
    delete = [s for inc in aged for s in sorted(groups[inc], key=lambda s: s["SnapshotId"])
              if s.get("State") != "pending"]
    return {"kept": kept, "aged": aged, "delete": delete}
