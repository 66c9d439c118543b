"""Evidence of one instance: snapshot every EBS volume, copy each snapshot into the forensics account under the
forensics key, hash the block lists, tag, retain. A resumable phase machine: one call advances everything that can
advance without waiting and returns the new state; Step Functions waits (``waitSeconds``) and calls again.

The chain, per volume (each step reads first, so a retried or repeated call changes nothing twice)::

    snapshot   one crash-consistent set of all attached volumes (ec2:CreateSnapshots, after isolation - or before
               an approval, ``awaiting_approval``: then the chain adopts that set after the isolation), tagged
               ir:incident / ir:collected-by at creation and ir:source = the volume's ARN right after
    reencrypt  encrypted and not already under the member account's evidence-sharing key: copy it in the member
               account under that key (the default aws/ebs key cannot be shared; a workload's own key is not
               ours to open to another account). Unencrypted snapshots skip this step.
    share      createVolumePermission for the forensics account id only (never a group, never `all`)
    copy       the forensics account copies the shared snapshot under IR_FORENSICS_KEY_ARN, tagged at creation
    unshare    the share is removed as soon as the forensics copy is completed (or has failed)
    hash       SHA-256 of the canonical block list (responder.blocklist) of the source, of the re-encrypted copy
               and of the forensics copy; long listings continue over several calls from a saved midstate
    verify     all digests equal: ``ir:hash = sha256:<hex>`` on every snapshot of the chain; otherwise the
               incident fails with EvidenceIntegrityError (no ir:hash is written, nothing is deleted)

When every volume is done, **retention** (`responder.evidence_retention`: the tags, the descriptions and the
rules) deletes aged collections of this instance on each side. It runs only after a fully successful collection
and is the only deletion the responder makes.

**The re-encrypted copies are kept as evidence.** They are the exact artefact that was shared and copied, they
carry the four tags and a verified ``ir:hash``, and deleting evidence outside the retention rule is never done;
they age out with their collection. Single-account layout (forensics account = member account): nothing is
shared or re-encrypted; the forensics copy is made directly from the source snapshot.

**Dry run**: the same stages with a dry-run journal. Every change is planned, not made; what a planned call would
have created gets a placeholder id (``<snapshot of vol-...>``) that the later stages treat as completed without
reading it, no block list is read (the planned digest is a placeholder), and the plan ends in one call
(``status: planned``) with the retention that would follow.

**Waiting.** ``waitSeconds`` doubles from 30 s up to a cap of 15 min (1 h once the collection is older than 24 h),
the cap multiplied by ceil(instances / 5) for incidents with more than five instances (they share one execution
history). A call that stopped hashing only because its time ran out asks for 1 s. After 7 days of waiting the
instance fails with EvidenceTimeout. History budget: one loop is 9 events (Task 5, Choice 2, Wait 2); 24 h of
waiting take 5 ramp loops + 95 capped loops = 100 loops = 900 events per instance (3.6% of the 25,000-event
limit); 4,500 (18%) for an incident of five instances, and at most 7,650 (31%) for the largest incident (50
instances, all waiting a whole day); a full week of waiting is 244 loops (2,196 events) per instance.

Failures: a snapshot or copy in state ``error`` fails its volume with SnapshotFailed (and its StateMessage); an
AWS error fails the volume with the AWS error code; the other volumes go on. Transient errors raise
TransientAwsError (the task is retried with the same input, and every step finds what it made by its tags and
description). Limits that clear by themselves (concurrent snapshots or copies) are recorded as ``deferred`` and
retried on the next call.
"""
from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any, Callable

from responder.adapters import Adapters
from responder.arns import ebs_volumes, tag_map
from responder.blocklist import BlockListError, hash_listing
from responder.errors import AccountAccessError, error_code, recorded
from responder.evidence_retention import (
    FORENSICS_KINDS,
    LOCKED_STATES,
    MEMBER_KINDS,
    TAG_COLLECTED_BY,
    TAG_HASH,
    TAG_INCIDENT,
    TAG_QUARANTINE,
    TAG_SOURCE,
    candidate_filters,
    collector_prefix,
    copy_description,
    parse_description,
    recent_collection,
    retention_plan,
    set_description,
)
from responder.journal import Journal, iso, utcnow
from responder.protection import protected_reason
from responder.settings import Settings

BASE_WAIT = 30
WAIT_CAP = 900
LATE_WAIT_CAP = 3600
LATE_AFTER = 24 * 3600
GIVE_UP_AFTER = 7 * 24 * 3600
CONTINUE_WAIT = 1
INSTANCES_PER_CAP = 5
RESERVE_MS = 60_000  # stop hashing when less than this (plus 3 slow pages) is left of the invocation
MISSING_LIMIT = 3  # calls a known snapshot may be absent from DescribeSnapshots (eventual consistency)
PLANNED_DIGEST = "sha256:<digest of the block list>"
# EC2 eventual consistency: a snapshot just made (or just shared, seen from the other account) may be unknown to
# the next calls for a while. For this incident's own snapshots it means "not yet": retried within the call after
# these delays (seconds), then in the next NOT_YET_CALLS calls of the loop; only then is it an error.
NOT_YET_CODES = frozenset({"InvalidSnapshot.NotFound"})
NOT_YET_DELAYS = (0.5, 1.0, 2.0)
NOT_YET_CALLS = 5
AWAITING_APPROVAL = "awaiting_approval"  # the isolation status before an approval (SnapshotBeforeApproval)
QUARANTINED = ("isolated", "incomplete")  # ir:quarantine values the isolation writes

# Limits that clear by themselves: retried on the next call, not a failure.
DEFERRED_CODES = frozenset({
    "ConcurrentSnapshotLimitExceeded", "SnapshotCreationPerVolumeRateExceeded", "ResourceLimitExceeded",
    "ConcurrentLimitExceededException",
})
STAGES = ("snapshot", "reencrypt", "share", "copy", "unshare", "hash", "verify", "done", "failed")
_SKIP_ISOLATION = {
    "protected": "the instance is protected: it is not touched",
    "protection_unverified": "the protection check could not be made: nothing is done (fail closed)",
    "not_found": "the instance does not exist",
}


# --------------------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------------------
def wait_seconds(waits: int, elapsed_seconds: float, instances: int = 1) -> int:
    """The next wait: 30 s doubling per wait, capped (15 min, 1 h after 24 h), the cap scaled for incidents
    with more than five instances (all Map iterations write to one execution history)."""
    cap = (WAIT_CAP if elapsed_seconds < LATE_AFTER else LATE_WAIT_CAP) * max(1, math.ceil(instances / INSTANCES_PER_CAP))
    return int(min(cap, BASE_WAIT * 2 ** min(max(waits, 0), 30)))


def isolation_gate(isolation: dict | None) -> str | None:
    """Why evidence must not be collected for this instance, or None. A failed (or crashed) isolation does not
    stop evidence: snapshots change nothing on the instance and preserve what is there."""
    return _SKIP_ISOLATION.get((isolation or {}).get("status", ""))


def attached_volumes(instance: dict) -> list[dict[str, str]]:
    """The EBS volumes attached to the instance: [{"volumeId", "device"}], in device order."""
    return [{"volumeId": v["volumeId"], "device": v["deviceName"]} for v in ebs_volumes(instance)]


def captured_volumes(isolation: dict | None) -> list[dict[str, str]]:
    """The EBS volumes the isolation found attached before it changed anything: [{"volumeId", "device"}]."""
    volumes = ((isolation or {}).get("metadata") or {}).get("volumes") or []
    return [{"volumeId": v["volumeId"], "device": v.get("deviceName") or ""} for v in volumes if v.get("volumeId")]


def isolated_by_another(isolation: dict | None, incident_id: str) -> str | None:
    """The incident (or "another incident") that had already quarantined the instance when this incident reached
    it, or None: then this incident's collection is a first collection. Read from the instance's tags as the
    isolation captured them before any change, or from an ``already_isolated`` status."""
    isolation = isolation or {}
    tags = (isolation.get("metadata") or {}).get("tags") or {}
    if tags.get(TAG_QUARANTINE) in QUARANTINED and tags.get(TAG_INCIDENT) != incident_id:
        return tags.get(TAG_INCIDENT) or "another incident"
    if isolation.get("status") == "already_isolated" and tags.get(TAG_INCIDENT) != incident_id:
        return tags.get(TAG_INCIDENT) or "another incident"
    return None


def planned_id(what: str, volume_id: str) -> str:
    """The placeholder a dry run gives to what a planned call would have created."""
    return f"<{what} of {volume_id}>"


def is_planned(snapshot_id: str) -> bool:
    return snapshot_id.startswith("<")


# --------------------------------------------------------------------------------------------------------
# Adapters (responder.adapters, built by the handler): ``member`` and ``forensics`` (Snapshots in each account),
# ``member_blocks`` and ``forensics_blocks`` (EbsBlocks), ``sharing_key`` (the key ARN copies are shared under),
# each made on first use: a role is assumed only when its side is needed.
# --------------------------------------------------------------------------------------------------------
class _Deferred(Exception):
    pass


class _Deadline:
    """stop() for the hashing loop: true once the invocation's remaining time nears the reserve, allowing for
    three of the slowest pages seen so far."""

    def __init__(self, remaining_ms: Callable[[], int], reserve_ms: int = RESERVE_MS):
        self._remaining, self._reserve = remaining_ms, reserve_ms
        self._last: float | None = None
        self._slowest = 0.0
        self.hit = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self._last is not None:
            self._slowest = max(self._slowest, now - self._last)
        self._last = now
        self.hit = self._remaining() < self._reserve + 3000 * self._slowest
        return self.hit


# --------------------------------------------------------------------------------------------------------
# The phase machine
# --------------------------------------------------------------------------------------------------------
class _Run:
    def __init__(self, event: dict, adapters: Adapters, settings: Settings, journal: Journal,
                 remaining_ms: Callable[[], int], clock: Callable[[], datetime],
                 sleep: Callable[[float], None] = time.sleep):
        self.incident = event["incident"]
        self.instance_id = event["instanceId"]
        self.isolation = event.get("isolation") or {}
        prev = dict(event.get("evidence") or {})
        self.entries: list[dict] = list(prev.pop("entries", None) or [])
        self.state = prev
        self.a = adapters
        self.settings = settings
        self.j = journal
        self.clock = clock
        self.deadline = _Deadline(remaining_ms)
        self.sleep = sleep
        self.member_account = self.incident["accountId"]
        self.region = self.incident["region"]
        self.forensics_account = settings.forensics_account or self.member_account
        self.cross_account = self.forensics_account != self.member_account
        self.incident_id = self.incident["incidentId"]
        self.collected_by = self.incident.get("executionId") or "unknown"
        self.hash_cut = False
        self.deferred: set[int] = set()
        self.fresh: set[str] = set()
        self.member_states: dict[str, dict] = {}
        self.forensics_states: dict[str, dict] = {}

    # -- result -----------------------------------------------------------------------------------------
    def _out(self, *, done: bool, status: str, wait: int = 0, **extra: Any) -> dict[str, Any]:
        state = self.state
        state.update(extra)
        state.update(done=done, status=status, waitSeconds=int(wait) if not done else 0,
                     instanceId=self.instance_id)
        state["phase"] = "done" if done else self._phase()
        state["entries"] = self.entries + self.j.entries
        return state

    def _phase(self) -> str:
        stages = [i["stage"] for i in self.state.get("snapshots", []) if i["stage"] not in ("done", "failed")]
        if not self.state.get("snapshots"):
            return "start"
        return min(stages, key=STAGES.index) if stages else "retain"

    def _copy_description(self, kind: str, of: str, volume_id: str) -> str:
        return copy_description(kind, self.incident_id, self.instance_id, of, volume_id,
                                follow_up=bool(self.state.get("followUp")))

    def _tags(self, source_arn: str) -> dict[str, str]:
        return {TAG_INCIDENT: self.incident_id, TAG_SOURCE: source_arn, TAG_COLLECTED_BY: self.collected_by}

    # -- one AWS step of one volume -----------------------------------------------------------------------
    def _attempt(self, item: dict | None, step: str, target: str, fn: Callable[[], Any], *,
                 subject: str | None = None) -> Any:
        """Run one step. Transient errors raise TransientAwsError; deferrable limits raise _Deferred; any other
        AWS error is recorded, fails the volume (if one is given) and returns _FAILED. `subject`: the snapshot of
        this incident the call names; while it is `_not_yet` visible, InvalidSnapshot.NotFound is retried here
        (NOT_YET_DELAYS), then deferred to the next call, at most NOT_YET_CALLS times."""
        delays = list(NOT_YET_DELAYS)
        while True:
            try:
                return fn()
            except Exception as exc:  # a bug or a transient error is raised by _failed_attempt (errors.recorded)
                if not (error_code(exc) in NOT_YET_CODES and subject and self._not_yet(subject)):
                    return self._failed_attempt(item, step, target, exc)
                self._relabel(target, error_code(exc), "not_yet")
                if delays:
                    self.sleep(delays.pop(0))
                    continue
                waited = self.state.setdefault("notYet", {})
                waited[subject] = int(waited.get(subject, 0)) + 1
                if waited[subject] > NOT_YET_CALLS:
                    return self._failed_attempt(item, step, target, exc)
                self.j.note("deferred", target, step=step, error=error_code(exc),
                            detail=f"{subject} is not visible yet to this call (EC2 eventual consistency): "
                                   "tried again in the next call")
                if item is not None:
                    self.deferred.add(id(item))
                raise _Deferred(error_code(exc)) from exc

    def _not_yet(self, snapshot_id: str) -> bool:
        """Can `snapshot_id` (this incident's) be merely not visible yet to the call that did not find it? Yes if
        this call made it, or if its owner lists it now (asked once, only after a NotFound: e.g. the forensics
        account copying right after the share); no once it is gone for good."""
        if snapshot_id in self.fresh:
            return True
        forensics = {p["snapshotId"] for i in self.state.get("snapshots", []) for side, p in self._parts(i)
                     if side == "forensics"}
        owner = self.a.forensics if snapshot_id in forensics else self.a.member
        return snapshot_id in owner.describe([snapshot_id])

    def _relabel(self, target: str, code: str, status: str) -> None:
        """The journal recorded the refused call as failed: it was not a failure."""
        last = self.j.entries[-1] if self.j.entries else {}
        if last.get("status") == "failed" and last.get("error") == code and last.get("target") == target:
            last["status"] = status

    def _failed_attempt(self, item: dict | None, step: str, target: str, exc: Exception) -> Any:
        """Judge an AWS error of one step (see `_attempt`)."""
        code = recorded(exc, f"{step} on {target}")
        if code in DEFERRED_CODES:
            last = self.j.entries[-1] if self.j.entries else {}
            if last.get("status") == "failed" and last.get("error") == code:
                last["status"] = "deferred"
            else:
                self.j.note("deferred", target, step=step, error=code)
            if item is not None:
                self.deferred.add(id(item))
            raise _Deferred(code) from exc
        last = self.j.entries[-1] if self.j.entries else {}
        if last.get("status") != "failed" or last.get("target") != target:  # reads are not journalled
            self.j.note("failed", target, step=step, error=code, message=str(exc)[:400])
        if item is not None:
            self._fail(item, code, f"{step}: {str(exc)[:300]}")
        return _FAILED

    def _fail(self, item: dict, code: str, message: str) -> None:
        if not item.get("error"):
            item["error"], item["message"] = code, message
        shared = self.cross_account and item.get("shared") is True
        item["stage"] = "unshare" if shared else "failed"

    # -- start: the snapshot set ------------------------------------------------------------------------
    def start(self) -> dict[str, Any] | None:
        """Take (or find) the snapshot set. Returns a final result when there is nothing (more) to do."""
        self.state.setdefault("startedAt", iso(self.clock()))
        reason = isolation_gate(self.isolation)
        if reason:
            self.j.note("skipped", self.instance_id, detail=reason)
            return self._out(done=True, status="skipped", reason=reason)
        member = self.a.member
        instance = member.instance(self.instance_id)
        if self.isolation.get("status") == AWAITING_APPROVAL and instance is not None:
            # before an approval nothing has isolated (or checked) the instance: its protection is checked here.
            # A protection tag asks for approval, not immunity: snapshots change nothing, so they may be taken.
            reason = protected_reason(member.instance_arn(self.instance_id), tag_map(instance.get("Tags")),
                                      self.settings, approved=True)
            if reason:
                self.j.note("protected", member.instance_arn(self.instance_id), detail=reason)
                return self._out(done=True, status="skipped", reason=f"protected: {reason}", snapshots=[])
        captured = captured_volumes(self.isolation)
        if instance is None and not captured:
            self.j.note("not_found", self.instance_id, detail="no such instance in the account")
            return self._out(done=True, status="skipped", reason="the instance does not exist")
        mapped = attached_volumes(instance or {})
        if not mapped and not captured:
            self.j.note("skipped", self.instance_id, detail="no EBS volume is attached (instance store is not snapshotable)")
            return self._out(done=True, status="skipped", reason="no EBS volume attached")
        if not mapped:  # every volume the isolation captured is gone from the instance: say so, volume by volume
            return self._all_missing(captured, "no EBS volume is attached any more"
                                     if instance is not None else "the instance no longer exists")
        volumes = member.volumes(v["volumeId"] for v in mapped)
        follow_up = isolated_by_another(self.isolation, self.incident_id) is not None
        existing = member.find([{"Name": "description", "Values": [set_description(self.incident_id, self.instance_id),
                                                                   set_description(self.incident_id, self.instance_id,
                                                                                   follow_up=True)]},
                                {"Name": f"tag:{TAG_INCIDENT}", "Values": [self.incident_id]}])
        if existing:
            self.j.note("unchanged", member.instance_arn(self.instance_id),
                        detail=f"snapshot set already taken: {', '.join(sorted(s['SnapshotId'] for s in existing))}")
            taken = existing
            self.state["replay"] = True  # later stages look for what an earlier run made before redoing it
            self.state["followUp"] = not all(parse_description(s.get("Description"))["first"] for s in existing)
        else:
            self.state["followUp"] = follow_up
            if follow_up:
                recent = self._recent_collection()
                if recent is not None:
                    return recent
            tags = {TAG_INCIDENT: self.incident_id, TAG_COLLECTED_BY: self.collected_by}
            description = set_description(self.incident_id, self.instance_id, follow_up=follow_up)
            try:
                taken = self._attempt(None, "create_snapshot_set", member.instance_arn(self.instance_id),
                                      lambda: member.create_set(self.instance_id, description, tags))
            except _Deferred:
                return None  # try again after the wait
            if taken is _FAILED:
                failure = self.j.entries[-1]
                return self._out(done=True, status="failed", error=failure.get("error"),
                                 message=failure.get("message"), snapshots=[])
            if taken is None:  # planned: what the set would hold
                taken = [{"SnapshotId": planned_id("snapshot", v["volumeId"]), "VolumeId": v["volumeId"]}
                         for v in mapped]
            self.fresh.update(s["SnapshotId"] for s in taken if not is_planned(s["SnapshotId"]))
        if not taken:
            return self._all_missing(captured or mapped, "CreateSnapshots returned no snapshot")
        devices = {v["volumeId"]: v["device"] for v in mapped}
        items = []
        for snap in sorted(taken, key=lambda s: (devices.get(s.get("VolumeId"), "~"), s["SnapshotId"])):
            volume_id = snap.get("VolumeId", "")
            volume = volumes.get(volume_id, {})
            items.append({
                "volumeId": volume_id, "device": devices.get(volume_id, ""),
                "sizeGiB": snap.get("VolumeSize") or volume.get("Size"),
                "encrypted": bool(snap.get("Encrypted", volume.get("Encrypted", False))),
                "kmsKeyId": snap.get("KmsKeyId") or volume.get("KmsKeyId"),
                "stage": "snapshot",
                "source": {"snapshotId": snap["SnapshotId"], "arn": member.snapshot_arn(snap["SnapshotId"]),
                           "state": snap.get("State", "pending")},
            })
            if tag_map(snap.get("Tags")).get(TAG_SOURCE) == member.volume_arn(volume_id):
                items[-1]["sourceTagged"] = True
        self.state["snapshots"] = items
        missing = self._missing_volumes(mapped + captured, {s.get("VolumeId") for s in taken})
        if missing:
            self.state["missingVolumes"] = missing
        self.state["forensicsAccount"] = self.forensics_account
        # where the forensics copies are made: the forensics region (a cross-region copy from this instance's)
        self.state["forensicsRegion"] = self.settings.forensics_region or self.region
        self.state["forensicsKeyArn"] = self.settings.forensics_key_arn or None
        return None

    def _recent_collection(self) -> dict[str, Any] | None:
        """A repeated finding on an instance another incident isolated: no new collection if one was taken within
        IR_EVIDENCE_MIN_INTERVAL_MINUTES (manual requests always collect). The final result, or None."""
        minutes = self.settings.evidence_min_interval_minutes
        if self.incident.get("origin") == "manual" or minutes <= 0:
            return None
        prefix = collector_prefix(self.incident.get("executionId"))
        recent = recent_collection(self.a.member.find(candidate_filters(self.instance_id)),
                                   instance_id=self.instance_id, current_incident=self.incident_id, prefix=prefix,
                                   now=self.clock().timestamp(), interval_seconds=minutes * 60)
        if recent is None:
            return None
        reason = (f"the instance is already isolated and {recent['incident']} collected its evidence "
                  f"{recent['ageSeconds'] // 60} min ago ({', '.join(recent['snapshotIds'])}): no new collection "
                  f"within {minutes} min (evidenceMinIntervalMinutes); a manual request collects at any time")
        self.j.note("skipped", self.instance_id, step="collection_interval", detail=reason)
        return self._out(done=True, status="skipped", reason=reason, recentCollection=recent, snapshots=[])

    def _all_missing(self, expected: list[dict], why: str) -> dict[str, Any]:
        missing = self._missing_volumes(expected, set(), why=why)
        self.state["missingVolumes"] = missing
        return self._out(done=True, status="failed", error="VolumeMissing", snapshots=[],
                         message="; ".join(f"{m['volumeId']}: {m['message']}" for m in missing))

    def _missing_volumes(self, expected: list[dict], snapped: set, *, why: str = "") -> list[dict[str, str]]:
        """Volumes the isolation captured before any change (or attached a moment ago) that are not in the snapshot
        set: detached or deleted in between. Their evidence is lost; it must be said, never passed over, with
        what became of each volume."""
        devices: dict[str, str] = {}
        for v in expected:
            devices.setdefault(v["volumeId"], v.get("device", ""))
        lost = sorted(v for v in devices if v not in snapped)
        if not lost:
            return []
        now = self.a.member.volumes(lost)
        missing = []
        for volume_id in lost:
            volume = now.get(volume_id)
            if volume is None:
                fate = "the volume no longer exists (deleted)"
            else:
                holders = sorted({a.get("InstanceId") for a in volume.get("Attachments") or []} - {None})
                if holders == [self.instance_id]:
                    fate = "the volume still lists this instance as its attachment: snapshot it by hand"
                elif holders:
                    fate = f"the volume is now attached to {', '.join(holders)}: snapshot it by hand"
                else:
                    fate = f"the volume still exists, detached ({volume.get('State')}): snapshot it by hand"
            message = (f"{volume_id} ({devices[volume_id] or 'device unknown'}) was attached when the instance was "
                       f"captured but is not in the snapshot set{': ' + why if why else ''}; {fate}")
            self.j.note("failed", volume_id, error="VolumeMissing", message=message)
            missing.append({"volumeId": volume_id, "device": devices[volume_id], "error": "VolumeMissing",
                            "message": message})
        return missing

    # -- the stages of one volume -------------------------------------------------------------------------
    def _snapshot_state(self, part: dict, states: dict[str, dict]) -> str:
        """Update `part` from DescribeSnapshots; returns completed / pending / error."""
        sid = part["snapshotId"]
        if is_planned(sid):
            part["state"] = "planned"
            return "completed"
        if sid in self.fresh:
            return "pending"
        snap = states.get(sid)
        if snap is None:
            part["missing"] = part.get("missing", 0) + 1
            if part["missing"] > MISSING_LIMIT:
                part["state"] = "error"
                part["stateMessage"] = "the snapshot no longer exists (deleted while evidence was being collected?)"
                return "error"
            return "pending"
        part.pop("missing", None)
        part["state"] = snap.get("State", "pending")
        if snap.get("Progress"):
            part["progress"] = snap["Progress"]
        if snap.get("KmsKeyId"):
            part["kmsKeyId"] = snap["KmsKeyId"]
        if snap.get("StateMessage"):
            part["stateMessage"] = snap["StateMessage"]
        return {"completed": "completed", "error": "error", "recoverable": "pending",
                "recovering": "pending"}.get(part["state"], "pending")

    def _stage_snapshot(self, item: dict) -> bool:
        source = item["source"]
        member, sid = self.a.member, source["snapshotId"]
        visible = sid in self.fresh or sid in self.member_states or is_planned(sid)
        if not item.get("sourceTagged") and visible:  # ir:source names the volume: right after the set call
            volume_arn = member.volume_arn(item["volumeId"])
            if tag_map((self.member_states.get(sid) or {}).get("Tags")).get(TAG_SOURCE) != volume_arn:
                if self._attempt(item, "tag_source", source["arn"], lambda: member.tag(sid, {TAG_SOURCE: volume_arn}),
                                 subject=sid) is _FAILED:
                    return True
            item["sourceTagged"] = True
        state = self._snapshot_state(source, self.member_states)
        if state == "error":
            self._fail(item, "SnapshotFailed", f"snapshot {source['snapshotId']}: {source.get('stateMessage', 'state error')}")
            return True
        if state != "completed" or not item.get("sourceTagged"):
            return False
        item["kmsKeyId"] = source.get("kmsKeyId") or item.get("kmsKeyId")
        item["stage"] = "reencrypt"
        return True

    def _stage_reencrypt(self, item: dict) -> bool:
        source = item["source"]
        if not (self.cross_account and item.get("encrypted")):
            item["sharedSnapshotId"] = source["snapshotId"]
            item["stage"] = "share"
            return True
        key = self.state.get("sharingKeyArn") or self._attempt(
            None if self.j.dry_run else item, "resolve_sharing_key", self.settings.sharing_key_alias,
            lambda: self.a.sharing_key)
        if key is _FAILED:
            if not self.j.dry_run:
                return True
            key = f"<{self.settings.sharing_key_alias}>"
        self.state["sharingKeyArn"] = key
        if item.get("kmsKeyId") == key:
            item["sharedSnapshotId"] = source["snapshotId"]
            item["stage"] = "share"
            return True
        copy = item.get("sharingCopy")
        member = self.a.member
        if copy is None:
            description = self._copy_description("sharing-copy", source["snapshotId"], item["volumeId"])
            sid = self._find_or_copy(item, member, member, source["snapshotId"], description, key,
                                     planned_id("sharing copy", item["volumeId"]))
            if sid is None:
                return item["stage"] != "reencrypt"
            item["sharingCopy"] = {"snapshotId": sid, "arn": member.snapshot_arn(sid), "kmsKeyId": key,
                                   "state": "pending"}
            return is_planned(sid)  # a planned copy is complete at once; a real one is waited for
        state = self._snapshot_state(copy, self.member_states)
        if state == "error":
            self._fail(item, "SnapshotFailed", f"re-encrypted copy {copy['snapshotId']}: {copy.get('stateMessage', 'state error')}")
            return True
        if state != "completed":
            return False
        item["sharedSnapshotId"] = copy["snapshotId"]
        item["stage"] = "share"
        return True

    def _find_or_copy(self, item: dict, owner: Any, source_side: Any, source_id: str, description: str,
                      key: str, placeholder: str) -> str | None:
        """The copy with this description (made by an earlier call), or a new one (`placeholder` when planned).
        None: failed or deferred."""
        existing = [] if is_planned(source_id) else owner.find(
            [{"Name": "description", "Values": [description]},
             {"Name": f"tag:{TAG_INCIDENT}", "Values": [self.incident_id]}])
        if existing:
            sid = sorted(existing, key=lambda s: s["SnapshotId"])[0]["SnapshotId"]
            self.j.note("unchanged", owner.snapshot_arn(sid), detail=f"copy of {source_id} already made")
            self.fresh.add(sid)
            return sid
        try:
            sid = self._attempt(item, "copy_snapshot", source_side.snapshot_arn(source_id),
                                lambda: owner.copy(source_id, source_region=self.region, description=description,
                                                   kms_key_id=key, tags=self._tags(source_side.snapshot_arn(source_id)),
                                                   target=source_side.snapshot_arn(source_id)),
                                subject=source_id)
        except _Deferred:
            return None
        if sid is _FAILED:
            return None
        if sid is None:  # planned
            return placeholder
        self.fresh.add(sid)
        return sid

    def _stage_share(self, item: dict) -> bool:
        if not self.cross_account:
            item["stage"] = "copy"
            return True
        member, sid = self.a.member, item["sharedSnapshotId"]
        if self.state.get("replay") and not item.get("shared"):  # its forensics copy may exist: no second share
            description = self._copy_description("forensics-copy", sid, item["volumeId"])
            copies = self._attempt(item, "share_with_forensics", member.snapshot_arn(sid), lambda: self.a.forensics.find(
                [{"Name": "description", "Values": [description]},
                 {"Name": f"tag:{TAG_INCIDENT}", "Values": [self.incident_id]}]))
            if copies is _FAILED:
                return True
            if copies:
                self.j.note("unchanged", member.snapshot_arn(sid),
                            detail=f"not shared again: its forensics copy {copies[0]['SnapshotId']} exists")
                item["stage"] = "copy"
                return True
        found = (set(), set()) if is_planned(sid) else self._attempt(
            item, "share_with_forensics", member.snapshot_arn(sid), lambda: member.shared_with(sid), subject=sid)
        if found is _FAILED:
            return True
        users, _groups = found
        if self.forensics_account in users:
            self.j.note("unchanged", member.snapshot_arn(sid), detail=f"already shared with {self.forensics_account}")
        elif self._attempt(item, "share_with_forensics", member.snapshot_arn(sid),
                           lambda: member.share(sid, self.forensics_account), subject=sid) is _FAILED:
            return True
        item["shared"] = True
        item["stage"] = "copy"
        return True

    def _stage_copy(self, item: dict) -> bool:
        if not self.settings.forensics_key_arn:
            self._fail(item, "ConfigurationError", "IR_FORENSICS_KEY_ARN is not set: no forensics copy can be made")
            return True
        copy = item.get("forensicsCopy")
        if copy is None:
            forensics, member = self.a.forensics, self.a.member
            sid = item["sharedSnapshotId"]
            description = self._copy_description("forensics-copy", sid, item["volumeId"])
            new = self._find_or_copy(item, forensics, member, sid, description, self.settings.forensics_key_arn,
                                     planned_id("forensics copy", item["volumeId"]))
            if new is None:
                return item["stage"] != "copy"
            item["forensicsCopy"] = {"snapshotId": new, "arn": forensics.snapshot_arn(new),
                                     "kmsKeyId": self.settings.forensics_key_arn, "state": "pending"}
            return is_planned(new)
        state = self._snapshot_state(copy, self.forensics_states)
        if state == "error":
            self._fail(item, "SnapshotFailed", f"forensics copy {copy['snapshotId']}: {copy.get('stateMessage', 'state error')}")
            return True
        if state != "completed":
            return False
        if not self._lock_copy(item):
            return True
        item["stage"] = "unshare"
        return True

    def _lock_copy(self, item: dict) -> bool:
        """Custody: EBS Snapshot Lock on the forensics copy for the evidence retention (IR_EVIDENCE_LOCK_MODE /
        _DAYS; README "Custody"). A copy already locked (an earlier attempt) is left as it is. False: failed."""
        copy, mode = item["forensicsCopy"], self.settings.evidence_lock_mode
        if not mode or copy.get("lock"):
            return True
        forensics, sid = self.a.forensics, copy["snapshotId"]
        held = None if is_planned(sid) else forensics.locked([sid]).get(sid)
        if held:
            self.j.note("unchanged", copy["arn"], detail=f"already locked ({held.get('LockState')})")
            copy["lock"] = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in held.items()
                            if k in ("LockState", "LockDuration", "LockExpiresOn")}
            return True
        try:
            lock = self._attempt(item, "lock_snapshot", copy["arn"],
                                 lambda: forensics.lock(sid, mode=mode, days=self.settings.evidence_lock_days),
                                 subject=sid)
        except _Deferred:
            return False
        if lock is _FAILED:
            return False
        copy["lock"] = lock or {"planned": mode}
        return True

    def _stage_unshare(self, item: dict) -> bool:
        if self.cross_account and item.get("shared") is True:
            member, sid = self.a.member, item["sharedSnapshotId"]
            found = ({self.forensics_account}, set()) if is_planned(sid) else self._attempt(
                None, "remove_share", member.snapshot_arn(sid), lambda: member.shared_with(sid), subject=sid)
            if found is not _FAILED:
                if self.forensics_account in found[0]:
                    done = self._attempt(None, "remove_share", member.snapshot_arn(sid),
                                         lambda: member.unshare(sid, self.forensics_account), subject=sid)
                else:
                    self.j.note("unchanged", member.snapshot_arn(sid), detail="share already removed")
                    done = None
                if done is not _FAILED:
                    item["shared"] = "removed"
            if item.get("shared") is True and not item.get("error"):
                item["error"], item["message"] = "ShareNotRemoved", f"{sid} is still shared with {self.forensics_account}"
        item["stage"] = "failed" if item.get("error") else "hash"
        return True

    def _parts(self, item: dict) -> list[tuple[str, dict]]:
        parts = [("member", item["source"])]
        if item.get("sharingCopy"):
            parts.append(("member", item["sharingCopy"]))
        if item.get("forensicsCopy"):
            parts.append(("forensics", item["forensicsCopy"]))
        return parts

    def _stage_hash(self, item: dict) -> bool:
        if self.j.dry_run:  # no block list is read for a plan
            for _side, part in self._parts(item):
                part.setdefault("digest", PLANNED_DIGEST)
        if all(p.get("digest") for _side, p in self._parts(item)):
            item["stage"] = "verify"
            return True
        return False

    def _stage_verify(self, item: dict) -> bool:
        parts = self._parts(item)
        digests = {p["digest"] for _side, p in parts}
        if len(digests) != 1:
            listing = ", ".join(f"{p['snapshotId']}={p['digest']}" for _side, p in parts)
            self.j.note("failed", item["source"]["arn"], step="verify_block_lists", error="EvidenceIntegrityError",
                        detail=f"block-list digests differ: {listing}")
            self._fail(item, "EvidenceIntegrityError", f"block-list digests differ: {listing}")
            return True
        digest = digests.pop()
        for side, part in parts:
            adapter = self.a.member if side == "member" else self.a.forensics
            states = self.member_states if side == "member" else self.forensics_states
            tags = tag_map((states.get(part["snapshotId"]) or {}).get("Tags"))
            if tags.get(TAG_HASH) == digest:
                self.j.note("unchanged", part["arn"], detail=f"{TAG_HASH} already {digest}")
                continue
            try:
                if self._attempt(item, "tag_hash", part["arn"],
                                 lambda: adapter.tag(part["snapshotId"], {TAG_HASH: digest}),
                                 subject=part["snapshotId"]) is _FAILED:
                    return True
            except _Deferred:
                return False
        item["digest"] = digest
        item["stage"] = "done"
        return True

    def _advance(self, item: dict) -> None:
        if id(item) in self.deferred:  # hit a limit in this call: try again in the next one
            return
        for _ in range(len(STAGES) * 2):  # every stage either advances or stops: bounded
            stage = item["stage"]
            if stage in ("done", "failed"):
                return
            try:
                if not getattr(self, f"_stage_{stage}")(item):
                    return
            except _Deferred:
                self.deferred.add(id(item))
                return

    # -- hashing ----------------------------------------------------------------------------------------
    def _hash_jobs(self) -> list[tuple[dict, str, dict]]:
        jobs = []
        for item in self.state.get("snapshots", []):
            if item["stage"] in ("failed",) or item.get("error"):
                continue
            for side, part in self._parts(item):
                if part.get("state") == "completed" and not part.get("digest") and part["snapshotId"] not in self.fresh:
                    jobs.append((item, side, part))
        current = (self.state.get("hashing") or {}).get("snapshotId")
        jobs.sort(key=lambda job: job[2]["snapshotId"] != current)
        return jobs

    def _hash(self) -> None:
        for number, (item, side, part) in enumerate(self._hash_jobs()):
            if number and self.deadline():  # the first job always reads a page: every call makes progress
                self.hash_cut = True
                return
            sid = part["snapshotId"]
            running = self.state.get("hashing") or {}
            resume = running.get("resume") if running.get("snapshotId") == sid else None
            lister = self.a.member_blocks if side == "member" else self.a.forensics_blocks
            try:
                result = hash_listing(lister, sid, resume=resume, stop=self.deadline)
            except BlockListError as exc:
                self.j.note("failed", part["arn"], step="hash_block_list", error="BlockListError", detail=str(exc))
                self._fail(item, "BlockListError", f"block list of {sid}: {exc}")
                self.state["hashing"] = None
                continue
            except Exception as exc:
                code = recorded(exc, f"ListSnapshotBlocks {sid}", "ebs")
                if code in DEFERRED_CODES:
                    self.j.note("deferred", part["arn"], step="hash_block_list", error=code)
                    return
                self.j.note("failed", part["arn"], step="hash_block_list", error=code, detail=str(exc)[:300])
                self._fail(item, code, f"ListSnapshotBlocks {sid}: {str(exc)[:300]}")
                self.state["hashing"] = None
                continue
            if not result["done"]:
                self.state["hashing"] = {"snapshotId": sid, "resume": result["resume"]}
                self.hash_cut = True
                return
            part["digest"], part["blocks"] = result["digest"], result["blocks"]
            self.j.note("hashed", part["arn"], step="hash_block_list", digest=result["digest"],
                        blocks=result["blocks"], pages=result["pages"])
            self.state["hashing"] = None

    # -- retention --------------------------------------------------------------------------------------
    def _retain(self, *, planned: bool = False) -> dict[str, Any]:
        prefix = collector_prefix(self.incident.get("executionId"))
        if prefix is None:
            self.j.note("skipped", self.instance_id, step="retention",
                        detail="no execution id: cannot tell this responder's snapshots apart, nothing deleted")
            return {"skipped": "no execution id"}
        keep = self.settings.snapshot_retention
        sides = [("member", self.a.member, MEMBER_KINDS, None),
                 ("forensics", self.a.forensics, FORENSICS_KINDS, self.member_account)]
        out: dict[str, Any] = {"keep": keep}
        for name, adapter, kinds, source_account in sides:
            candidates = adapter.find(candidate_filters(self.instance_id))
            args = dict(keep=keep, current_incident=self.incident_id, instance_id=self.instance_id, kinds=kinds,
                        prefix=prefix, source_account=source_account, planned_collection=planned)
            plan = retention_plan(candidates, **args)
            out[name] = {"kept": plan["kept"], "first": plan["first"]}
            if plan["delete"]:  # never try to delete what an EBS Snapshot Lock forbids
                locks = self._lock_states(adapter, [s["SnapshotId"] for s in plan["delete"]])
                if locks is None:
                    out[name]["skipped"] = "the lock states could not be read: nothing deleted"
                    continue
                plan = retention_plan(candidates, locked=[sid for sid, state in locks.items()
                                                          if state in LOCKED_STATES], **args)
            for sid in plan["locked"]:
                self.j.note("skipped", adapter.snapshot_arn(sid), step="retention_delete",
                            detail=f"aged out but locked ({locks[sid]}): kept until its lock expires")
            deleted, failed = [], []
            for snap in plan["delete"]:
                sid = snap["SnapshotId"]
                try:  # a refused delete (a lock set meanwhile, a policy) is recorded; it never fails the incident
                    result = self._attempt(None, "retention_delete", adapter.snapshot_arn(sid),
                                           lambda: adapter.delete(sid))
                except _Deferred:
                    result = _FAILED
                (failed if result is _FAILED else deleted).append(sid)
            out[name]["planned" if self.j.dry_run else "deleted"] = deleted
            if plan["locked"]:
                out[name]["locked"] = plan["locked"]
            if failed:
                out[name]["failed"] = failed
        return out

    def _lock_states(self, adapter: Any, snapshot_ids: list[str]) -> dict[str, str] | None:
        """{snapshot id: lock state} of the locked ones among `snapshot_ids`; None (recorded) if unreadable."""
        try:
            return {sid: lock.get("LockState", "") for sid, lock in adapter.locked(snapshot_ids).items()}
        except Exception as exc:
            code = recorded(exc, "DescribeLockedSnapshots", "ec2")
            self.j.note("skipped", f"{adapter.account}", step="retention", error=code,
                        detail="the snapshots' lock states could not be read: nothing is deleted on this side")
            return None

    # -- one call ---------------------------------------------------------------------------------------
    def advance(self) -> dict[str, Any]:
        self.state["invocations"] = int(self.state.get("invocations", 0)) + 1
        if not self.state.get("snapshots"):
            final = self.start()
            if final is not None:
                return final
            if not self.state.get("snapshots"):  # deferred before the set existed
                return self._wait()
        items = self.state["snapshots"]
        ids = {side: [p["snapshotId"] for i in items for s, p in self._parts(i) if s == side and not is_planned(p["snapshotId"])]
               for side in ("member", "forensics")}
        self.member_states = self.a.member.describe(ids["member"]) if ids["member"] else {}
        self.forensics_states = self.a.forensics.describe(ids["forensics"]) if ids["forensics"] else {}
        for item in items:
            self._advance(item)
        if not self.j.dry_run:
            self._hash()
        for item in items:
            self._advance(item)

        finished = all(i["stage"] in ("done", "failed") for i in items)
        if finished or self.j.dry_run:  # a plan never waits
            failed = [i for i in items if i["stage"] == "failed"] + list(self.state.get("missingVolumes") or [])
            if failed and not self.j.dry_run:
                return self._out(done=True, status="failed", error=_error_name(failed),
                                 message="; ".join(f"{i['volumeId']}: {i.get('message', i.get('error'))}" for i in failed))
            if "retention" not in self.state and not failed:
                self.state["retention"] = self._retain(planned=self.j.dry_run)
            return self._out(done=True, status="planned" if self.j.dry_run else "collected")
        return self._wait()

    def _wait(self) -> dict[str, Any]:
        elapsed = (self.clock() - datetime.fromisoformat(self.state["startedAt"].replace("Z", "+00:00"))).total_seconds()
        if elapsed > GIVE_UP_AFTER:
            pending = [i["volumeId"] for i in self.state.get("snapshots", []) if i["stage"] not in ("done", "failed")]
            return self._out(done=True, status="failed", error="EvidenceTimeout",
                             message=f"evidence not complete after {elapsed / 3600:.0f} h: {', '.join(pending)}")
        if self.hash_cut:  # stopped hashing only for time: continue in a new invocation at once
            return self._out(done=False, status="in_progress", wait=CONTINUE_WAIT)
        waits = int(self.state.get("waits", 0))
        wait = wait_seconds(waits, elapsed, len(self.incident.get("instances") or [self.instance_id]))
        self.state["waits"] = waits + 1
        return self._out(done=False, status="in_progress", wait=wait)


class _FailedType:
    def __repr__(self) -> str:
        return "<failed>"


_FAILED = _FailedType()


def _error_name(failed: list[dict]) -> str:
    errors = [i.get("error") for i in failed]
    for name in ("EvidenceIntegrityError", "SnapshotFailed"):
        if name in errors:
            return name
    return errors[0] or "EvidenceIncomplete"


def collect(event: dict, *, adapters: Adapters, settings: Settings, journal: Journal | None = None,
            remaining_ms: Callable[[], int] = lambda: 10 ** 9, clock: Callable[[], datetime] = utcnow,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Advance the evidence chain of `event["instanceId"]` as far as it goes now; returns the new state
    (``done``, ``waitSeconds``, ``status``, ``phase``, ``snapshots``, ``entries``...)."""
    incident = event["incident"]
    journal = journal or Journal(dry_run=bool(incident.get("dryRun")), clock=clock)
    run = _Run(event, adapters, settings, journal, remaining_ms, clock, sleep)
    try:
        return run.advance()
    except AccountAccessError as exc:  # a role could not be assumed: record, keep every id collected so far
        journal.note("failed", incident.get("accountId", "?"), error="AccountAccessError", detail=str(exc)[:400])
        return run._out(done=True, status="failed", error="AccountAccessError", message=str(exc)[:400])
