"""The instances of the Auto Scaling groups an attack sequence names, read from Auto Scaling at triage.

The finding lists a group's instances as strings (``data.autoscalingAutoScalingGroup.ec2InstanceUids``); the
responder never targets those. Triage asks Auto Scaling which instances the group has *now*
(DescribeAutoScalingGroups, in the incident's account and region) and adds them to the incident's instances, each of
which then goes through the isolation task's own protection gate. The list stays bounded by ``MAX_TARGETS``: what is
over it is left out and counted (``signal.omitted.instances``), and the notification says so.

A group that does not exist (deleted, renamed) is recorded in ``signal.groupsNotFound``; a group that cannot be read
(the member role refused, the account unreachable) in ``signal.groupsUnread`` with the error: the instances the
sequence names directly are still isolated, and the notification names what was not read. A throttle is raised as
TransientAwsError so that Step Functions retries Triage (it is idempotent).
"""
from __future__ import annotations

from typing import Any, Callable

from responder.errors import TransientAwsError, best_effort, error_code, is_transient


def expand(incident: dict[str, Any], read: Callable[[list[str]], dict[str, list[str]]], cap: int) -> dict[str, Any]:
    """`incident` with the instances of its ``autoScalingGroups`` added (at most `cap` instances in all).
    `read(names)` answers {group: instance ids} from Auto Scaling."""
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
    counts: dict[str, int] = {}
    for name in groups:
        if name not in found:
            signal.setdefault("groupsNotFound", []).append(name)
            continue
        counts[name] = len(found[name])
        for instance_id in found[name]:
            if instance_id in instances:
                continue
            if len(instances) >= cap:
                omitted = signal.setdefault("omitted", {})
                omitted["instances"] = omitted.get("instances", 0) + 1
                continue
            instances.append(instance_id)
    signal["groupInstances"] = counts
    return incident
