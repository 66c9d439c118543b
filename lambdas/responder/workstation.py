"""The forensic workstation: open an incident's disks on a workstation in the forensics account (the AWS IR guide
appendix's last commands: run-instances from the forensic AMI, create-volume from the snapshot, attach-volume,
authorize-security-group-ingress for live response). On request only: ``{"analyze": {...}}``; never started by a
finding.

Request (validated by `parse`, strictly: an unknown key, a missing or malformed field is `InvalidInput` naming it,
before anything is read or changed)::

    {"analyze": {"incidentId": "IR-2024-0602", "reason": "open the disks",
                 "workstation": {"instanceId": "i-0123456789abcdef0"},
                 "liveResponse": {"port": 22}, "dryRun": false}}

``workstation`` is either ``{"instanceId"}``, an instance of the forensics account tagged
``ir:purpose=forensic-workstation``, or ``{"imageId", "instanceType", "subnetId"}`` (optionally
``securityGroupIds``, ``keyName``): a forensic AMI the forensics account owns, tagged the same way, from which one
workstation is launched for the incident (tagged at launch, no public IP address, IMDSv2 only).

**What is used.** The incident's forensics copies: snapshots the forensics account owns (``OwnerIds=self``: a
snapshot a production account shares into it is not one), tagged ``ir:incident`` with the incident, completed,
whose ``ir:hash`` tag equals the verified digest the incident record holds for that copy (the evidence task's
result). A copy the record does not list, or whose digest differs, is refused and named in the result; no copy
verified: the analysis fails (``NoVerifiedEvidence``). The snapshots are never modified: a volume is made from
each (create-volume), the copy itself stays as it is.

**What is made.** One volume per verified copy in the workstation's Availability Zone (gp3), tagged at creation
``ir:incident``, ``ir:purpose=forensic-analysis``, ``ir:source`` (the copy's ARN), ``ir:workstation``; attached
at the next free device names (``/dev/sdf`` ... ``/dev/sdp``). With ``liveResponse``: one ingress rule on each of
the responder's quarantine groups of the incident's instances (member account, through the member role): TCP on
exactly that port from the workstation's private address /32. A security-group reference (the appendix's
``--source-group``) works only within one VPC or across a peering; the address works over any route
(peering, Transit Gateway) the two VPCs share. The rule is recorded; nothing opens it but this request.

**Idempotent.** Volumes are found again by their tags (and created with a ClientToken), attachments read back; a
second request for the same incident and workstation creates and attaches nothing, an existing identical rule is
left alone. Workstations launched from an image are found again by their tags (incident, purpose, image).

**Waiting.** A resumable phase machine like the evidence task: each call advances what can advance and returns
``waitSeconds`` (10 s doubling to 60 s) while an instance is pending, a volume is creating or attaching; Step
Functions waits (``WaitForAnalysis``). After ``GIVE_UP_AFTER`` the analysis fails with ``AnalysisTimeout``.

Dry run: every change planned (placeholder ids), nothing made, one call.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from responder.arns import PURPOSE_TAG, QUARANTINE, tag_map
from responder.errors import InvalidInput, recorded

WORKSTATION_PURPOSE = "forensic-workstation"
VOLUME_PURPOSE = "forensic-analysis"
TAG_INCIDENT = "ir:incident"
TAG_SOURCE = "ir:source"
TAG_HASH = "ir:hash"
TAG_WORKSTATION = "ir:workstation"
TAG_LAUNCHED_BY = "ir:launched-by"
DEVICES = tuple(f"/dev/sd{c}" for c in "fghijklmnop")  # what EC2 recommends for EBS data volumes on Linux
BASE_WAIT, WAIT_CAP, GIVE_UP_AFTER = 10, 60, 3600
MAX_GROUPS = 5

REQUEST_KEYS = {"incidentId", "reason", "workstation", "liveResponse", "dryRun"}
INSTANCE_KEYS = {"instanceId"}
IMAGE_KEYS = {"imageId", "instanceType", "subnetId", "securityGroupIds", "keyName"}
LIVE_KEYS = {"port"}
_A = re.ASCII
_INSTANCE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?", _A)
_IMAGE = re.compile(r"ami-[0-9a-f]{8}([0-9a-f]{9})?", _A)
_SUBNET = re.compile(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?", _A)
_GROUP = re.compile(r"sg-[0-9a-f]{8}([0-9a-f]{9})?", _A)
_TYPE = re.compile(r"[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,16}", _A)
_KEY_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}", _A)

# Outcome of an analysis (responder.outcome): failing ones carry the error name.
OUTCOMES = {"ready": ("analysis_ready", None), "planned": ("dry_run_plan", None),
            "incomplete": ("analysis_incomplete", "AnalysisIncomplete"), "refused": ("analysis_refused", "AnalysisRefused"),
            "failed": ("analysis_failed", "AnalysisFailed")}


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- the request (pure) ----------------------------------------------------------------------------------
def _keys(obj: Any, allowed: set[str], field: str) -> dict:
    if not isinstance(obj, dict):
        raise InvalidInput(field, f"must be an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise InvalidInput(f"{field}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return obj


def parse(request: Any, *, string: Any, incident_pattern: re.Pattern, now_fields: dict[str, Any]) -> dict[str, Any]:
    """The analyze request as an incident (``origin``/``disposition`` ``analyze``), or InvalidInput naming the
    field. `string(value, field, pattern, max_len=)` validates a string (responder.triage); `now_fields`: the
    cut-off and triage time. The incident's account, region and partition come from its record (`with_record`)."""
    p = "analyze"
    request = _keys(request, REQUEST_KEYS, p)
    for key in ("incidentId", "reason", "workstation"):
        if request.get(key) is None:
            raise InvalidInput(f"{p}.{key}", "is required")
    incident_id = string(request["incidentId"], f"{p}.incidentId", incident_pattern)
    reason = string(request["reason"], f"{p}.reason", None, max_len=1024)
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput(f"{p}.dryRun", "must be true or false")
    ws = request["workstation"]
    wp = f"{p}.workstation"
    if not isinstance(ws, dict):
        raise InvalidInput(wp, f"must be an object, got {type(ws).__name__}")
    if "instanceId" in ws:
        _keys(ws, INSTANCE_KEYS, wp)
        workstation: dict[str, Any] = {"instanceId": string(ws["instanceId"], f"{wp}.instanceId", _INSTANCE)}
    elif "imageId" in ws:
        _keys(ws, IMAGE_KEYS, wp)
        for key in ("instanceType", "subnetId"):
            if ws.get(key) is None:
                raise InvalidInput(f"{wp}.{key}", "is required with imageId")
        workstation = {"imageId": string(ws["imageId"], f"{wp}.imageId", _IMAGE),
                       "instanceType": string(ws["instanceType"], f"{wp}.instanceType", _TYPE, max_len=33),
                       "subnetId": string(ws["subnetId"], f"{wp}.subnetId", _SUBNET)}
        groups = ws.get("securityGroupIds", [])
        if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
            raise InvalidInput(f"{wp}.securityGroupIds", f"must be a list of at most {MAX_GROUPS} group ids")
        workstation["securityGroupIds"] = list(dict.fromkeys(
            string(g, f"{wp}.securityGroupIds[{i}]", _GROUP) for i, g in enumerate(groups)))
        if ws.get("keyName") is not None:
            workstation["keyName"] = string(ws["keyName"], f"{wp}.keyName", _KEY_NAME, max_len=64)
    else:
        raise InvalidInput(wp, "name either instanceId (a workstation of the forensics account) or imageId, "
                               "instanceType and subnetId (a forensic AMI to start one from)")
    live = None
    if request.get("liveResponse") is not None:
        lp = f"{p}.liveResponse"
        _keys(request["liveResponse"], LIVE_KEYS, lp)
        port = request["liveResponse"].get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidInput(f"{lp}.port", "must be one TCP port, an integer from 1 to 65535")
        live = {"port": port}
    return {"incidentId": incident_id, "origin": "analyze", "reason": reason, "dryRun": dry_run,
            "disposition": "analyze", "dispositionReason": "", "identities": [], "instances": [],
            "analyze": {"workstation": workstation, "liveResponse": live}, **now_fields}


def with_record(incident: dict[str, Any], item: dict[str, Any] | None) -> dict[str, Any]:
    """The analyze incident completed from its record (account, region, partition, the instances answered), or
    InvalidInput: an incident the responder never recorded, or one whose response is still running, has no
    verified evidence to open yet."""
    field = "analyze.incidentId"
    if not item:
        raise InvalidInput(field, f"no incident {incident['incidentId']!r} is recorded: analyze an incident the "
                                  "responder answered")
    if item.get("status") == "in_progress":
        raise InvalidInput(field, f"the response to {incident['incidentId']} is still in progress: analyze it once "
                                  "it has ended (its evidence is verified by then)")
    for key in ("accountId", "region"):
        if not item.get(key):
            raise InvalidInput(field, f"the incident record has no {key}")
    incident.update(accountId=item["accountId"], region=item["region"], partition=item.get("partition") or "aws")
    incident["analyze"]["instances"] = list(((item.get("targets") or {}).get("instances") or []))[:50]
    return incident


# -- decisions (pure) ------------------------------------------------------------------------------------
def wait_seconds(waits: int) -> int:
    return int(min(WAIT_CAP, BASE_WAIT * 2 ** min(max(waits, 0), 10)))


def workstation_refusal(instance: dict | None, account: str) -> str | None:
    """Why this instance may not be the workstation, or None: it must be the forensics account's own (an id of
    another account answers NotFound there; the reservation's owner is checked too), tagged exactly
    ``ir:purpose=forensic-workstation``, and not terminated."""
    if instance is None:
        return f"no such instance in the forensics account {account}"
    if instance.get("OwnerId") and instance["OwnerId"] != account:
        return f"the instance belongs to account {instance['OwnerId']}, not the forensics account {account}"
    tags = tag_map(instance.get("Tags"))
    if tags.get(PURPOSE_TAG) != WORKSTATION_PURPOSE:
        return f"the instance is not tagged {PURPOSE_TAG}={WORKSTATION_PURPOSE}"
    state = (instance.get("State") or {}).get("Name")
    if state in ("shutting-down", "terminated"):
        return f"the instance is {state}"
    return None


def image_refusal(image: dict | None, account: str) -> str | None:
    """Why no workstation may be started from this image, or None: the forensics account must own it (it is
    looked up with ``Owners=self``) and it must be tagged ``ir:purpose=forensic-workstation`` and available."""
    if image is None:
        return f"no such image owned by the forensics account {account} (a shared or public image is not used)"
    if image.get("OwnerId") and image["OwnerId"] != account:
        return f"the image is owned by {image['OwnerId']}, not the forensics account {account}"
    if tag_map(image.get("Tags")).get(PURPOSE_TAG) != WORKSTATION_PURPOSE:
        return f"the image is not tagged {PURPOSE_TAG}={WORKSTATION_PURPOSE}"
    if image.get("State", "available") != "available":
        return f"the image is {image.get('State')}"
    return None


def expected_copies(item: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{copy snapshot id: where it came from and its verified digest} from the incident record's evidence results:
    only volumes whose chain is done (every digest equal, ``ir:hash`` written)."""
    out: dict[str, dict[str, Any]] = {}
    for key, result in sorted(((item or {}).get("results") or {}).items()):
        if not key.startswith("evidence:") or not isinstance(result, dict):
            continue
        for snap in result.get("snapshots") or []:
            copy = (snap or {}).get("forensicsCopy") or {}
            if snap.get("stage") == "done" and copy.get("snapshotId") and snap.get("digest"):
                out[copy["snapshotId"]] = {"instanceId": key.split(":", 1)[1], "volumeId": snap.get("volumeId"),
                                           "device": snap.get("device"), "digest": snap["digest"]}
    return out


def verify_copies(expected: dict[str, dict[str, Any]], found: list[dict[str, Any]], *, incident_id: str,
                  account: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(usable copies, refused ones with the reason). A copy is usable when the forensics account owns it, it is
    completed, tagged with the incident, and its ``ir:hash`` equals the digest the record holds for it."""
    usable, refused, seen = [], [], set()
    for snap in sorted(found, key=lambda s: s.get("SnapshotId", "")):
        sid = snap.get("SnapshotId", "")
        seen.add(sid)
        tags = tag_map(snap.get("Tags"))
        want = expected.get(sid)
        why = None
        if snap.get("OwnerId") != account:
            why = f"owned by {snap.get('OwnerId')}, not the forensics account"
        elif tags.get(TAG_INCIDENT) != incident_id:
            why = f"not tagged {TAG_INCIDENT}={incident_id}"
        elif want is None:
            why = "not a forensics copy the incident record lists"
        elif snap.get("State") != "completed":
            why = f"state {snap.get('State')}"
        elif tags.get(TAG_HASH) != want["digest"]:
            why = f"{TAG_HASH} {tags.get(TAG_HASH)!r} differs from the recorded digest {want['digest']}"
        if why:
            refused.append({"snapshotId": sid, "reason": why})
        else:
            usable.append({"snapshotId": sid, "digest": want["digest"], "sizeGiB": snap.get("VolumeSize"),
                           **{k: want[k] for k in ("instanceId", "volumeId", "device")}})
    for sid in sorted(set(expected) - seen):
        refused.append({"snapshotId": sid, "reason": "the record lists it, but the forensics account owns no such "
                                                      "snapshot tagged with the incident"})
    return usable, refused


def free_devices(used: set[str], count: int) -> list[str]:
    """The next `count` free device names for data volumes (`DEVICES`), skipping every name in use (also
    ``/dev/xvdf`` for ``/dev/sdf``: the same slot on Xen instances). Fewer when the range is full."""
    taken = {d.replace("/dev/xvd", "/dev/sd") for d in used}
    return [d for d in DEVICES if d not in taken][:count]


def live_rule(ip: str, port: int) -> dict[str, Any]:
    """The one ingress permission of live response: TCP on one port from the workstation's address /32."""
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": f"{ip}/32"}]}


def has_rule(group: dict[str, Any], ip: str, port: int) -> bool:
    """Does the group already allow exactly this (TCP, port, address /32)?"""
    for perm in group.get("IpPermissions") or []:
        if perm.get("IpProtocol") == "tcp" and perm.get("FromPort") == port and perm.get("ToPort") == port and any(
                r.get("CidrIp") == f"{ip}/32" for r in perm.get("IpRanges") or []):
            return True
    return False


def token(*parts: str) -> str:
    """A ClientToken (at most 64 ASCII characters) for an idempotent create: the same parts, the same token."""
    return "ir-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:48]


def planned(what: str) -> str:
    return f"<{what}>"


def is_planned(value: str | None) -> bool:
    return bool(value) and value.startswith("<")


# -- the phase machine ------------------------------------------------------------------------------------
class Analysis:
    """One call of the analysis task: advance everything that can advance (`run`), return the new state."""

    def __init__(self, incident: dict[str, Any], state: dict[str, Any] | None, *, forensics: Any, member: Any,
                 record: Any, journal: Any, forensics_account: str, now: datetime | None = None):
        self.incident = incident
        self.request = incident["analyze"]
        self.state = dict(state or {})
        self.f = forensics  # responder.aws.workstation.Workstations (a factory result)
        self.member = member  # zero-argument factory of responder.aws.ec2.Ec2 in the incident's account
        self.record = record  # zero-argument reader of the incident record
        self.j = journal
        self.account = forensics_account
        self.now = now or _now()
        self.id = incident["incidentId"]

    def _out(self, status: str, *, wait: bool = False, **extra: Any) -> dict[str, Any]:
        self.state.update(extra)
        self.state["status"] = status
        self.state["done"] = not wait
        if wait:
            self.state["waitSeconds"] = wait_seconds(int(self.state.get("waits") or 0))
            self.state["waits"] = int(self.state.get("waits") or 0) + 1
        else:
            self.state["waitSeconds"] = 0
        return self.state

    def _stop(self, status: str, error: str, message: str) -> dict[str, Any]:
        self.j.note("failed" if status != "refused" else "refused", self.state.get("target") or self.id,
                    error=error, detail=message[:400])
        return self._out(status, error=error, message=message[:600])

    def run(self) -> dict[str, Any]:
        self.state.setdefault("startedAt", self.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        started = datetime.fromisoformat(self.state["startedAt"].replace("Z", "+00:00"))
        if (self.now - started).total_seconds() > GIVE_UP_AFTER:
            return self._stop("failed", "AnalysisTimeout", f"not ready after {GIVE_UP_AFTER} s: see the volumes and "
                                                           "the workstation in the forensics account")
        ws = self._workstation()
        if isinstance(ws, dict) and ws.get("done") is not None:
            return ws  # refused, or waiting for the instance
        if "copies" not in self.state:
            expected = expected_copies(self.record())
            usable, refused = verify_copies(expected, [] if not expected else self.f.copies(self.id),
                                            incident_id=self.id, account=self.account)
            for r in refused:
                self.j.note("refused", self.f.arn("snapshot", r["snapshotId"]), detail=r["reason"])
            self.state["copies"], self.state["refused"] = usable, refused
            if not usable:
                return self._stop("failed", "NoVerifiedEvidence",
                                  "no forensics copy of the incident could be verified against its record"
                                  + (f" ({len(refused)} refused)" if refused else ": the record lists none"))
        waiting = self._volumes()
        if waiting:
            return self._out("in_progress", wait=True)
        if self.request.get("liveResponse") and "liveResponse" not in self.state:
            self._live_response()
        volumes = self.state.get("volumes") or []
        failed = [v for v in volumes if v.get("status") == "failed"]
        if self.j.dry_run:
            return self._out("planned")
        if failed or self.state.get("refused") or any(r.get("status") == "failed"
                                                      for r in self.state.get("liveResponse") or []):
            attached = [v for v in volumes if v.get("status") == "attached"]
            return self._out("incomplete" if attached else "failed", error="AnalysisIncomplete" if attached
                             else "AnalysisFailed", message="; ".join(
                                 [f"{v['snapshotId']}: {v.get('error')}" for v in failed]
                                 + [f"{r['snapshotId']} refused: {r['reason']}" for r in self.state.get("refused") or []]
                                 + [f"live response {r.get('groupId') or r.get('instanceId')}: {r.get('reason')}"
                                    for r in self.state.get("liveResponse") or [] if r.get("status") == "failed"]
                             )[:600])
        return self._out("ready")

    # -- the workstation ------------------------------------------------------------------------------
    def _workstation(self) -> dict[str, Any] | None:
        asked = self.request["workstation"]
        known = self.state.get("workstation") or {}
        if known.get("ready"):
            return None
        if asked.get("instanceId") or known.get("instanceId"):
            wid = known.get("instanceId") or asked["instanceId"]
            self.state["target"] = self.f.arn("instance", wid)
            if is_planned(wid):
                self.state["workstation"] = dict(known, ready=True)
                return None
            instance = self.f.instance(wid)
            why = workstation_refusal(instance, self.account)
            if why:
                return self._stop("refused", "WorkstationRefused", f"{wid}: {why}")
            return self._adopt(instance, launched=bool(known.get("launched")))
        image_id = asked["imageId"]
        self.state["target"] = self.f.arn("image", image_id)
        found = self.f.launched(incident_id=self.id, image_id=image_id, purpose_tag=PURPOSE_TAG,
                                purpose=WORKSTATION_PURPOSE)
        found = [i for i in found if workstation_refusal(i, self.account) is None]
        if found:
            self.j.note("unchanged", self.f.arn("instance", found[0]["InstanceId"]),
                        detail=f"workstation already launched for {self.id} from {image_id}")
            return self._adopt(found[0], launched=True)
        why = image_refusal(self.f.image(image_id), self.account)
        if why:
            return self._stop("refused", "WorkstationRefused", f"{image_id}: {why}")
        subnet = self.f.subnet(asked["subnetId"])
        if subnet is None or subnet.get("OwnerId", self.account) != self.account:
            return self._stop("refused", "WorkstationRefused",
                              f"{asked['subnetId']}: not a subnet of the forensics account {self.account}")
        tags = {PURPOSE_TAG: WORKSTATION_PURPOSE, TAG_INCIDENT: self.id,
                TAG_LAUNCHED_BY: self.incident.get("executionId") or "", "Name": f"ir-workstation-{self.id}"[:255]}
        made = self.f.launch(image_id=image_id, instance_type=asked["instanceType"], subnet_id=asked["subnetId"],
                             group_ids=asked.get("securityGroupIds") or [], key_name=asked.get("keyName"),
                             tags={k: v for k, v in tags.items() if v},
                             token=token(self.id, image_id, asked["subnetId"], asked["instanceType"]))
        if made is None:  # planned
            self.state["workstation"] = {"instanceId": planned(f"workstation from {image_id}"), "launched": True,
                                         "availabilityZone": subnet.get("AvailabilityZone"),
                                         "privateIp": planned("private IP of the workstation"), "devices": [],
                                         "ready": True}
            return None
        return self._adopt(made, launched=True)

    def _adopt(self, instance: dict[str, Any], *, launched: bool) -> dict[str, Any] | None:
        state = (instance.get("State") or {}).get("Name")
        self.state["workstation"] = {
            "instanceId": instance["InstanceId"], "launched": launched, "state": state,
            "availabilityZone": (instance.get("Placement") or {}).get("AvailabilityZone"),
            "privateIp": instance.get("PrivateIpAddress"),
            "devices": sorted({m.get("DeviceName") for m in instance.get("BlockDeviceMappings") or []
                               if m.get("DeviceName")} | ({instance["RootDeviceName"]}
                                                          if instance.get("RootDeviceName") else set())),
        }
        self.state["target"] = self.f.arn("instance", instance["InstanceId"])
        if state == "pending" or not self.state["workstation"]["availabilityZone"]:
            return self._out("in_progress", wait=True)
        self.state["workstation"]["ready"] = True
        return None

    # -- the volumes ----------------------------------------------------------------------------------
    def _volumes(self) -> bool:
        """Create, then attach, one volume per verified copy. True while something is still creating/attaching."""
        ws = self.state["workstation"]
        wid, zone = ws["instanceId"], ws["availabilityZone"]
        volumes = {v["snapshotId"]: v for v in self.state.get("volumes") or []}
        existing = {} if is_planned(wid) else {
            v.get("SnapshotId"): v for v in self.f.volumes(incident_id=self.id, workstation_id=wid,
                                                           purpose_tag=PURPOSE_TAG, purpose=VOLUME_PURPOSE,
                                                           workstation_tag=TAG_WORKSTATION)
            if v.get("AvailabilityZone") == zone}
        used = set(ws.get("devices") or []) | {v["device"] for v in volumes.values() if v.get("device")}
        waiting = False
        for copy in self.state["copies"]:
            sid = copy["snapshotId"]
            item = volumes.setdefault(sid, {"snapshotId": sid, "sourceVolumeId": copy.get("volumeId"),
                                            "instanceId": copy.get("instanceId"), "digest": copy["digest"]})
            if item.get("status") in ("attached", "failed"):
                continue
            found = existing.get(sid)
            if found is None and not item.get("volumeId"):
                tags = {TAG_INCIDENT: self.id, PURPOSE_TAG: VOLUME_PURPOSE, TAG_SOURCE: self.f.arn("snapshot", sid),
                        TAG_WORKSTATION: wid}
                made = self.f.create_volume(snapshot_id=sid, zone=zone, tags=tags, token=token(self.id, wid, sid))
                item["volumeId"] = (made or {}).get("VolumeId") or planned(f"volume from {sid}")
                item["availabilityZone"] = zone
                if made is None:
                    item.update(status="planned", device=(free_devices(used, 1) or [None])[0])
                    used.add(item["device"] or "")
                    if item["device"]:
                        self._attach(item, wid)
                    continue
                found = made
            elif found is not None:
                item.setdefault("volumeId", found["VolumeId"])
                item["availabilityZone"] = zone
            if found is None:  # just created in an earlier call, not listed yet (eventual consistency)
                waiting = True
                continue
            state = found.get("State")
            attachments = [a for a in found.get("Attachments") or [] if a.get("State") in ("attaching", "attached")]
            mine = [a for a in attachments if a.get("InstanceId") == wid]
            if state == "error":
                item.update(status="failed", error="VolumeFailed", message=f"{found['VolumeId']} is in state error")
                self.j.note("failed", self.f.arn("volume", found["VolumeId"]), error="VolumeFailed")
            elif mine:
                item["device"] = mine[0].get("Device")
                if mine[0].get("State") == "attached":
                    if item.get("status") != "attaching":
                        self.j.note("unchanged", self.f.arn("volume", found["VolumeId"]),
                                    detail=f"already attached to {wid} at {item['device']}")
                    item["status"] = "attached"
                else:
                    item["status"], waiting = "attaching", True
            elif attachments:
                item.update(status="failed", error="VolumeInUse",
                            message=f"{found['VolumeId']} is attached to {attachments[0].get('InstanceId')}")
                self.j.note("failed", self.f.arn("volume", found["VolumeId"]), error="VolumeInUse",
                            detail=item["message"])
            elif state == "available":
                device = item.get("device") if item.get("device") and item.get("status") == "attaching" else None
                device = device or (free_devices(used, 1) or [None])[0]
                if device is None:
                    item.update(status="failed", error="NoFreeDevice",
                                message=f"every device name {DEVICES[0]}..{DEVICES[-1]} of {wid} is in use")
                    continue
                used.add(device)
                item["device"] = device
                self._attach(item, wid)
                waiting = True
            else:  # creating
                item["status"], waiting = "creating", True
        self.state["volumes"] = list(volumes.values())
        return waiting and not self.j.dry_run

    def _attach(self, item: dict[str, Any], wid: str) -> None:
        try:
            self.f.attach(volume_id=item["volumeId"], instance_id=wid, device=item["device"])
        except Exception as exc:  # the journal recorded the call; transient errors retry the task, bugs raise
            item.update(status="failed", error=recorded(exc, f"attach {item['volumeId']}", "ec2"),
                        message=str(exc)[:300])
            return
        if not self.j.dry_run:
            item["status"] = "attaching"

    # -- live response --------------------------------------------------------------------------------
    def _live_response(self) -> None:
        """One ingress rule per quarantine group of the incident's instances: TCP on the asked port from the
        workstation's private address /32 (member account). An instance without a quarantine group (never
        isolated, or released) is named, not opened."""
        port = self.request["liveResponse"]["port"]
        ip = self.state["workstation"].get("privateIp")
        rules: list[dict[str, Any]] = []
        self.state["liveResponse"] = rules
        if not ip:
            rules.append({"status": "failed", "reason": "the workstation has no private IPv4 address"})
            return
        ec2 = self.member()
        for instance_id in self.request.get("instances") or []:
            instance = ec2.describe_instance(instance_id)
            if instance is None:
                rules.append({"instanceId": instance_id, "status": "failed", "reason": "no such instance"})
                continue
            ids = sorted({g["GroupId"] for eni in instance.get("NetworkInterfaces") or []
                          for g in eni.get("Groups") or []} | {g["GroupId"] for g in instance.get("SecurityGroups") or []})
            groups = [g for g in (ec2.groups(ids) if ids else [])
                      if tag_map(g.get("Tags")).get(PURPOSE_TAG) == QUARANTINE]
            if not groups:
                rules.append({"instanceId": instance_id, "status": "failed",
                              "reason": "the instance is in no quarantine group of the responder: not opened"})
                continue
            for group in groups:
                rule = {"instanceId": instance_id, "groupId": group["GroupId"], "protocol": "tcp", "port": port,
                        "cidr": f"{ip}/32" if not is_planned(ip) else ip}
                if not is_planned(ip) and has_rule(group, ip, port):
                    self.j.note("unchanged", group["GroupId"], detail=f"tcp/{port} from {ip}/32 already allowed")
                    rules.append(dict(rule, status="unchanged"))
                    continue
                permission = live_rule(ip, port)
                permission["IpRanges"][0]["Description"] = f"ir live response {self.id}"[:255]
                try:
                    ec2.authorize(group["GroupId"], "ingress", [permission])
                except Exception as exc:  # transient errors retry the task, bugs raise
                    code = recorded(exc, f"live response rule on {group['GroupId']}", "ec2")
                    rules.append(dict(rule, status="unchanged" if code == "InvalidPermission.Duplicate" else "failed",
                                      reason=code))
                    continue
                rules.append(dict(rule, status="planned" if self.j.dry_run else "opened"))


def analyze(event: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """One call of the task: the new state (``done``, ``waitSeconds``, ``status``, ``workstation``, ``volumes``,
    ``refused``, ``liveResponse``), and the journal entries in ``entries``."""
    analysis = Analysis(event["incident"], (event.get("analysis") or {}).get("state"), **kw)
    state = analysis.run()
    state["entries"] = list(analysis.j.entries)
    return state


# -- what the state carries, and the outcome -------------------------------------------------------------
def summary(state: dict[str, Any]) -> dict[str, Any]:
    """The analysis's short form for the state and the execution output (the record holds the full result)."""
    ws = state.get("workstation") or {}
    volumes = state.get("volumes") or []
    return {"status": state.get("status"), "workstation": ws.get("instanceId"), "launched": ws.get("launched"),
            "availabilityZone": ws.get("availabilityZone"),
            "volumes": [{k: v.get(k) for k in ("volumeId", "device", "snapshotId", "status") if v.get(k)}
                        for v in volumes][:50],
            "refused": len(state.get("refused") or []),
            "liveResponse": [{k: r.get(k) for k in ("groupId", "cidr", "port", "status") if r.get(k)}
                             for r in state.get("liveResponse") or []][:20],
            "error": state.get("error"), "message": (state.get("message") or "")[:300] or None}


def outcome(state: dict[str, Any]) -> dict[str, Any]:
    """The outcome of an analyze execution (responder.outcome.decide), from ``$.analysis``."""
    analysis = state.get("analysis") or {}
    found = analysis.get("summary") or {}
    failure = state.get("failure")
    if failure or not found:
        f = failure or {}
        return {"outcome": "analysis_failed", "fail": True, "error": "AnalysisFailed",
                "cause": f"{f.get('task', 'analysis')}: {f.get('error', 'no result')}: {str(f.get('cause', ''))[:400]}"}
    name, error = OUTCOMES.get(found.get("status"), ("analysis_failed", "AnalysisFailed"))
    cause = None
    if error:
        cause = f"analysis of {(state.get('incident') or {}).get('incidentId')}: {found.get('error')}: " \
                f"{found.get('message') or ''}; nothing was undone"
    return {"outcome": name, "fail": error is not None, "error": found.get("error") if error and found.get("error")
            in ("WorkstationRefused", "NoVerifiedEvidence", "AnalysisTimeout") else error, "cause": cause}


def manifest_keys(incident_id: str, execution_name: str, count: int) -> list[str]:
    """The write-once names of an analysis's manifest (beside the attempts' manifests, same prefix)."""
    from responder.manifest import prefix

    base = f"{prefix(incident_id)}-analysis-{execution_name[:80]}"
    return [base + (f"-{n}" if n > 1 else "") + ".json" for n in range(1, count + 1)]
