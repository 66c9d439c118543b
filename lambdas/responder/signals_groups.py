"""The instances of the Auto Scaling groups an attack sequence names, read from Auto Scaling at triage.

The finding lists a group's instances as strings (``data.autoscalingAutoScalingGroup.ec2InstanceUids``); the
responder never targets those. Triage asks Auto Scaling which instances the group has *now*
(DescribeAutoScalingGroups, in the incident's account and region) and adds them to the incident's instances, each of
which then goes through the isolation task's own protection gate. The list stays bounded by ``MAX_TARGETS``: what is
over it is left out and counted (``signal.omitted.instances``), and the notification says so.

Only instances launched before the last activity GuardDuty saw (``service.eventLastSeen``; EC2's ``LaunchTime``) are
the sequence's: isolating an instance detaches it from its group and the group launches a replacement, which a
re-published finding must not isolate in turn (``signal.launchedAfterActivity`` counts those left alone). An instance
EC2 no longer knows is left out (``signal.gone``).

A group that does not exist (deleted, renamed) is recorded in ``signal.groupsNotFound``; a group that cannot be read
(the member role refused, the account unreachable) in ``signal.groupsUnread`` with the error: the instances the
sequence names directly are still isolated, and the notification names what was not read. A throttle is raised as
TransientAwsError so that Step Functions retries Triage (it is idempotent).
"""
from __future__ import annotations

from typing import Any, Callable

from responder.errors import TransientAwsError, best_effort, error_code, is_transient


Read = Callable[[list[str]], dict[str, dict[str, str]]]


def reader(autoscaling: Any, ec2: Any) -> Read:
    """`read(names)` -> {group: {instance id: launch time}} from the Auto Scaling and EC2 adapters (built lazily by
    the caller: `autoscaling()`, `ec2()`)."""
    def read(names: list[str]) -> dict[str, dict[str, str]]:
        groups = autoscaling().group_instances(names)
        ids = sorted({i for members in groups.values() for i in members})
        launched = ec2().launch_times(ids) if ids else {}
        return {g: {i: launched.get(i, "") for i in members} for g, members in groups.items()}
    return read


def expand(incident: dict[str, Any], read: Read, cap: int) -> dict[str, Any]:
    """`incident` with the instances of its ``autoScalingGroups`` added (at most `cap` instances in all).
    `read(names)` answers {group: {instance id: launch time ("" when EC2 does not know it)}}."""
    groups = list(incident.get("autoScalingGroups") or [])
    if not groups or incident.get("disposition") != "respond":
        return incident
    signal = incident.setdefault("signal", {})
    try:
        found = read(groups)
    except Exception as exc:  # recorded and notified; a throttle or a bug is raised
        if is_transient(exc):
            raise TransientAwsError(f"DescribeAutoScalingGroups: {error_code(exc)}") from exc
        if not best_effort(exc):
            raise
        signal["groupsUnread"] = {"groups": groups, "error": error_code(exc) or type(exc).__name__,
                                  "message": str(exc)[:300]}
        return incident
    instances = incident.setdefault("instances", [])
    last_seen = incident.get("eventLastSeen") or ""
    counts: dict[str, int] = {}
    for name in groups:
        if name not in found:
            signal.setdefault("groupsNotFound", []).append(name)
            continue
        counts[name] = len(found[name])
        for instance_id, launched in found[name].items():
            if instance_id in instances:
                continue
            if not launched:
                signal["gone"] = signal.get("gone", 0) + 1
                continue
            if last_seen and _after(launched, last_seen):
                signal["launchedAfterActivity"] = signal.get("launchedAfterActivity", 0) + 1
                continue
            if len(instances) >= cap:
                omitted = signal.setdefault("omitted", {})
                omitted["instances"] = omitted.get("instances", 0) + 1
                continue
            instances.append(instance_id)
    signal["groupInstances"] = counts
    return incident


def _after(launched: str, last_seen: str) -> bool:
    """Was the instance launched after the last activity? Unparsable times answer False (the instance is kept)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(launched.replace("Z", "+00:00")) > datetime.fromisoformat(
            last_seen.replace("Z", "+00:00"))
    except ValueError:
        return False
