"""Instance isolation: take a compromised EC2 instance off the network and out of service without destroying
evidence. The decisions are plain functions; the AWS calls are made by the adapters passed in.

Steps, in this order, each in its own journal step (a later failure never undoes an earlier step; the result says
which step failed and why). Every step reads first and changes only what is not already so, so a second run changes
nothing (``already_isolated``); a dry run plans every change and makes none.

1. ``capture_metadata``: the DescribeInstances output (interfaces, groups, profile, volumes, tags) as it was before
   any change, written once to the forensics evidence bucket
   (``incidents/<incidentId>/instances/<instanceId>/metadata.json``) and summarised in the result.
2. ``termination_protection`` on, ``shutdown_behavior`` "stop", ``delete_on_termination`` off for every attached
   EBS volume: nothing the instance or an operator does deletes the evidence.
3. ``auto_scaling``: detach from its Auto Scaling group without decrementing the desired capacity (the group
   launches a replacement; the service stays up). Done *before* the network change on purpose: once the instance
   is isolated its load-balancer health checks fail, and an Auto Scaling group replaces an unhealthy instance by
   terminating it - termination protection does not stop Auto Scaling. Detaching first closes that window even
   when a later step is retried with back-off.
4. ``security_groups`` + ``network_isolation``: per interface, the quarantine group of the interface's VPC (created
   on first use, found by the tag ``ir:purpose`` afterwards; no inbound, its default allow-all egress revoked; only
   ``IR_ISOLATION_CIDRS`` allowed in and out). Each interface moves first to the VPC's ``untrack-flows`` group
   (all traffic in and out from 0.0.0.0/0 and ::/0: EC2 stops tracking the interface's flows), then to the
   quarantine group: an established connection, untracked by then, does not survive the second move. Interfaces in
   different VPCs each get their own VPC's groups. The call is the one EC2 documents per interface
   (ModifyNetworkInterfaceAttribute), never the instance-level one, which fails or misleads with several
   interfaces.
5. ``revoke_older_sessions`` + ``instance_profile``: ``AWSRevokeOlderSessions`` (the incident's UTC cut-off, the same
   policy as the identity branch) on the role of the instance's profile - unless that role is protected - *then*
   the profile association is replaced by the deny-all profile. In this order a retry still knows the original
   profile. Note: the revocation also hits other instances that share the role until they refresh their
   credentials; that is AWS's documented remedy for stolen instance credentials. An instance without a profile
   has no role credentials: nothing to replace.
6. ``classic_load_balancers`` / ``target_groups``: deregister from every Classic load balancer and every ELBv2
   target group (instance targets by id, ip targets by the instance's addresses) it is registered in.
7. ``tag``: ``ir:incident`` = the incident id and ``ir:quarantine`` = ``isolated`` (``incomplete`` if a step
   failed). The workload's own tags (Environment, Name...) are never changed.

The result keeps what a release (responder.release) needs to restore exactly: ``metadata`` (the groups of each
interface, the instance profile, as they were), ``networkAclEntries`` and ``preState`` (the Auto Scaling group it
detached from, the quarantine group per VPC, the Classic load balancers and target-group registrations, with their
ports, it removed). The journal entries say which of those changes were made, and two ``recorded`` notes of the
``capture_metadata`` step keep the same pre-state in the timeline, where a later attempt cannot overwrite it.

Outcomes (``status``): isolated, already_isolated, planned (dry run), failed (some step failed; the others stand),
not_found (terminated or unknown instance: clean), protected (tag ``IR_PROTECTED_TAG=true`` or a protected ARN
pattern: untouched), protection_unverified (the instance could not be read: nothing changed, fail closed).
"""
from __future__ import annotations

import ipaddress
import time
from typing import Any, Callable, Iterable

from responder import network_acl
from responder.arns import GROUP_NAMES, PURPOSE_TAG, QUARANTINE, UNTRACK, ebs_volumes, instance_arn, tag_map
from responder.errors import AccountAccessError, recorded
from responder.identity import revoke
from responder.journal import Journal, StepFailed, iso, utcnow
from responder.protection import UNVERIFIABLE, approved, protected_reason
from responder.settings import REVOKE_POLICY_NAME, Settings

QUARANTINE_TAG = "ir:quarantine"
INCIDENT_TAG = "ir:incident"
LATER_INCIDENTS_TAG = "ir:incidents"  # incidents after the first, space-separated, within the tag value limit
TAG_VALUE_LIMIT = 256
GONE_STATES = ("shutting-down", "terminated")
STEP_ORDER = ("capture_metadata", "termination_protection", "shutdown_behavior", "delete_on_termination",
              "auto_scaling", "security_groups", "network_isolation", "connection_tracking", "network_acl",
              "revoke_older_sessions", "instance_profile", "classic_load_balancers", "target_groups", "tag",
              "later_incident")
# The timeline notes a release reads (responder.release.recorded_pre_state): the claim of a new attempt resets the
# record's ``results``, so a re-run's result holds the instance as the first attempt left it; the timeline keeps
# every attempt's notes, and the earliest capture is the pre-state.
PRE_STATE_NOTE = "the instance before any change (what a release restores)"
REMOVED_NOTE = "what this attempt removed (what a release restores)"
RECORD_STEPS = ("capture_metadata", "later_incident")  # what they write records the incident, contains nothing
ALL_V4, ALL_V6 = "0.0.0.0/0", "::/0"

Rule = tuple  # (protocol, from_port, to_port, kind, value): one normalized security-group rule


# --------------------------------------------------------------------------------------------------------
# Adapters (responder.adapters, built by the handler: handlers/isolate.py `adapters`): ``ec2``, ``autoscaling``,
# ``classic`` and ``target_groups`` (load balancers), ``iam``, ``evidence`` (the write-once evidence bucket, None
# when the deployment has none), each made on first use: an instance that is gone or protected costs one EC2
# client, not six.
#
# Pure decisions
# --------------------------------------------------------------------------------------------------------
# Auto Scaling lifecycle states (API reference, LifecycleState): DetachInstances accepts only InService and Standby.
DETACHABLE = ("InService", "Standby")
# Lifecycle states in which the instance is already leaving (or has left) its group.
LEAVING = ("Detaching", "Detached", "Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")
# On the way to InService or Standby: wait for it.
SETTLING = ("Pending", "Pending:Wait", "Pending:Proceed", "EnteringStandby", "Quarantined", "ReplacingRootVolume",
            "ReplacingRootVolume:Wait", "ReplacingRootVolume:Proceed", "RootVolumeReplaced")


def scaling_kind(state: str | None) -> str:
    """'detach', 'wait', 'leaving' or 'stuck' (warm pool, retained, unknown) for a lifecycle state."""
    if state in DETACHABLE:
        return "detach"
    if state in SETTLING:
        return "wait"
    if state in LEAVING:
        return "leaving"
    return "stuck"


def metadata_key(incident_id: str, instance_id: str) -> str:
    return f"incidents/{incident_id}/instances/{instance_id}/metadata.json"


def interfaces(instance: dict) -> list[dict]:
    """The instance's network interfaces, primary first."""
    return sorted(instance.get("NetworkInterfaces") or [],
                  key=lambda n: ((n.get("Attachment") or {}).get("DeviceIndex", 99), n["NetworkInterfaceId"]))


def vpc_ids(instance: dict) -> list[str]:
    return sorted({n["VpcId"] for n in interfaces(instance) if n.get("VpcId")})


def addresses(instance: dict) -> set[str]:
    """Every private IPv4 and IPv6 address of the instance (ip-type target groups register those)."""
    found: set[str] = set()
    for nic in interfaces(instance):
        found.update(a["PrivateIpAddress"] for a in nic.get("PrivateIpAddresses", []) if a.get("PrivateIpAddress"))
        found.update(a["Ipv6Address"] for a in nic.get("Ipv6Addresses", []) if a.get("Ipv6Address"))
        if nic.get("PrivateIpAddress"):
            found.add(nic["PrivateIpAddress"])
    return found


def summarize(instance: dict) -> dict[str, Any]:
    """What the result records of the instance before any change (the full output goes to the evidence bucket)."""
    profile = instance.get("IamInstanceProfile") or {}
    return {
        "instanceId": instance["InstanceId"],
        "state": (instance.get("State") or {}).get("Name"),
        "instanceType": instance.get("InstanceType"),
        "imageId": instance.get("ImageId"),
        "launchTime": str(instance.get("LaunchTime", "")),
        "availabilityZone": (instance.get("Placement") or {}).get("AvailabilityZone"),
        "vpcIds": vpc_ids(instance),
        "interfaces": [
            {"networkInterfaceId": n["NetworkInterfaceId"], "vpcId": n.get("VpcId"), "subnetId": n.get("SubnetId"),
             "privateIpAddress": n.get("PrivateIpAddress"),
             "deviceIndex": (n.get("Attachment") or {}).get("DeviceIndex"),
             "groups": [g["GroupId"] for g in n.get("Groups", [])]}
            for n in interfaces(instance)
        ],
        "instanceProfileArn": profile.get("Arn"),
        "volumes": ebs_volumes(instance),
        "tags": tag_map(instance.get("Tags")),
    }


def devices_deleted_on_termination(instance: dict) -> list[str]:
    """Device names of attached EBS volumes that would be deleted with the instance."""
    return [b["DeviceName"] for b in instance.get("BlockDeviceMappings", [])
            if b.get("Ebs", {}).get("DeleteOnTermination") is True]


def cidr_rule(cidr: str) -> Rule:
    """An all-traffic rule for `cidr` (IPv4 or IPv6). ValueError if it is not a CIDR."""
    net = ipaddress.ip_network(cidr, strict=False)
    return ("-1", None, None, "cidr6" if net.version == 6 else "cidr", str(net))


def desired_rules(purpose: str, isolation_cidrs: Iterable[str]) -> dict[str, set[Rule]]:
    """The rules each responder group must have, per direction."""
    if purpose == UNTRACK:  # all traffic both ways from/to everywhere: EC2 does not track such flows
        everything = {cidr_rule(ALL_V4), cidr_rule(ALL_V6)}
        return {"ingress": set(everything), "egress": set(everything)}
    allowed = {cidr_rule(c) for c in isolation_cidrs}
    return {"ingress": set(allowed), "egress": set(allowed)}


def rules_of(permissions: Iterable[dict]) -> set[Rule]:
    """Normalize DescribeSecurityGroups IpPermissions into comparable rules."""
    rules: set[Rule] = set()
    for p in permissions or []:
        proto = str(p.get("IpProtocol"))
        lo, hi = (None, None) if proto == "-1" else (p.get("FromPort"), p.get("ToPort"))
        rules.update((proto, lo, hi, "cidr", r["CidrIp"]) for r in p.get("IpRanges", []))
        rules.update((proto, lo, hi, "cidr6", r["CidrIpv6"]) for r in p.get("Ipv6Ranges", []))
        rules.update((proto, lo, hi, "prefix", r["PrefixListId"]) for r in p.get("PrefixListIds", []))
        rules.update((proto, lo, hi, "group", r["GroupId"]) for r in p.get("UserIdGroupPairs", []) if r.get("GroupId"))
    return rules


def permissions_of(rules: Iterable[Rule]) -> list[dict]:
    """Rules back into IpPermissions (one permission per rule, sorted: stable plans)."""
    out = []
    for proto, lo, hi, kind, value in sorted(rules, key=lambda r: tuple("" if v is None else str(v) for v in r)):
        perm: dict[str, Any] = {"IpProtocol": proto}
        if lo is not None:
            perm["FromPort"] = lo
        if hi is not None:
            perm["ToPort"] = hi
        if kind == "cidr":
            perm["IpRanges"] = [{"CidrIp": value}]
        elif kind == "cidr6":
            perm["Ipv6Ranges"] = [{"CidrIpv6": value}]
        elif kind == "prefix":
            perm["PrefixListIds"] = [{"PrefixListId": value}]
        else:
            perm["UserIdGroupPairs"] = [{"GroupId": value}]
        out.append(perm)
    return out


def rule_changes(group: dict, desired: dict[str, set[Rule]], *, exact: bool) -> list[tuple[str, str, set[Rule]]]:
    """[(action, direction, rules)] that bring `group` to `desired`: revoke extras first (exact groups only),
    then authorize what is missing."""
    changes = []
    for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
        current = rules_of(group.get(key, []))
        extra = current - desired[direction] if exact else set()
        missing = desired[direction] - current
        if extra:
            changes.append(("revoke", direction, extra))
        if missing:
            changes.append(("authorize", direction, missing))
    return changes


def new_group(group_id: str, vpc_id: str) -> dict:
    """A group as EC2 creates it: no inbound rule, all outbound IPv4 allowed (used to plan a dry run)."""
    return {"GroupId": group_id, "VpcId": vpc_id, "IpPermissions": [],
            "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": ALL_V4}]}]}


def interface_moves(current: list[str], quarantine: str, untrack: str) -> list[list[str]]:
    """The group sets an interface goes through: [] if already quarantined; straight to quarantine if it is in
    the untrack group already (its flows are untracked); else untrack first, then quarantine."""
    if current == [quarantine]:
        return []
    if current == [untrack]:
        return [[quarantine]]
    return [[untrack], [quarantine]]


def registrations(descriptions: list[dict], instance_id: str, ips: set[str], target_type: str) -> list[dict]:
    """The instance's live registrations in one target group (draining ones are already leaving)."""
    found = []
    for d in descriptions:
        target, health = d.get("Target", {}), d.get("TargetHealth", {})
        mine = target.get("Id") == instance_id if target_type == "instance" else target.get("Id") in ips
        if not mine or health.get("State") == "draining":
            continue
        if health.get("State") == "unused" and health.get("Reason") == "Target.NotRegistered":
            continue
        found.append({k: target[k] for k in ("Id", "Port", "AvailabilityZone") if target.get(k) is not None})
    return found


def profile_name(arn: str | None) -> str | None:
    return arn.rsplit("/", 1)[-1] if arn else None


_RANK = ("failed", "planned", "done", "protected", "not_found", "skipped", "unchanged")


def step_statuses(entries: list[dict]) -> dict[str, str]:
    """{step: status} from the journal, in the order of the steps: failed > planned > done > ... > unchanged."""
    seen: dict[str, set[str]] = {}
    for e in entries:
        if e.get("step"):
            seen.setdefault(e["step"], set()).add(e["status"])
    order = {s: i for i, s in enumerate(STEP_ORDER)}
    out = {}
    for step in sorted(seen, key=lambda s: order.get(s, len(order))):
        out[step] = next((s for s in _RANK if s in seen[step]), sorted(seen[step])[0])
    return out


def final_status(journal: Journal) -> str:
    if journal.failures:
        return "failed"
    if journal.dry_run and journal.changes:
        return "planned"
    contained = [e for e in journal.changes if e.get("step") not in RECORD_STEPS]
    return "isolated" if contained else "already_isolated"


# --------------------------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------------------------
def _result(instance_id: str, target: str, journal: Journal, status: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"kind": "instance", "instanceId": instance_id, "target": target, "status": status,
                              "steps": step_statuses(journal.entries), **extra, "entries": journal.entries}
    failures = journal.failures
    if status == "failed" and failures:
        first = failures[0]
        result["error"] = first.get("error")
        result["message"] = f"{first.get('step')} on {first.get('target')}: {first.get('message', '')}"[:500]
    return result


def _capture(a: Any, journal: Journal, instance: dict, incident: dict, arn: str) -> dict | None:
    instance_id = instance["InstanceId"]
    key = metadata_key(incident["incidentId"], instance_id)
    with journal.step("capture_metadata", instance_id):
        try:
            bucket = a.evidence
        except AccountAccessError as exc:  # evidence cannot be written; containment still goes on
            raise StepFailed("AccountAccessError", str(exc)) from exc
        if bucket is None:
            journal.note("skipped", instance_id, detail="no evidence bucket configured (IR_EVIDENCE_BUCKET)")
            return None
        sha256 = bucket.put_json_once(key, {
            "incidentId": incident["incidentId"], "instanceArn": arn, "capturedAt": iso(utcnow()),
            "source": "ec2:DescribeInstances", "accountId": incident["accountId"], "region": incident["region"],
            "instance": instance,
        })
        return {"uri": bucket.uri(key), "sha256": sha256}
    return None


def _protect(a: Any, journal: Journal, instance: dict) -> None:
    instance_id = instance["InstanceId"]
    with journal.step("termination_protection", instance_id):
        if instance.get("InstanceLifecycle") == "spot":
            journal.note("skipped", instance_id, detail="a Spot instance cannot be given termination protection (EC2 "
                         "refuses it); the rest of the isolation stands, and Spot may still reclaim the instance")
        elif a.ec2.attribute(instance_id, "disableApiTermination") is True:
            journal.note("unchanged", instance_id, detail="termination protection already on")
        else:
            a.ec2.enable_termination_protection(instance_id)
    with journal.step("shutdown_behavior", instance_id):
        if a.ec2.attribute(instance_id, "instanceInitiatedShutdownBehavior") == "stop":
            journal.note("unchanged", instance_id, detail="shutdown from the instance already stops it")
        else:
            a.ec2.stop_on_shutdown(instance_id)
    with journal.step("delete_on_termination", instance_id):
        devices = devices_deleted_on_termination(instance)
        if devices:
            a.ec2.keep_volumes(instance_id, devices)
        else:
            journal.note("unchanged", instance_id, detail="no attached EBS volume is deleted on termination")


def _try_detach(a: Any, journal: Journal, instance_id: str, membership: dict | None, pre: dict) -> dict | None:
    """Detach now if the state allows it. Returns the membership still to wait for (None: nothing left to do);
    StepFailed for a state Auto Scaling never detaches from (warm pool...)."""
    if membership is None:
        journal.note("unchanged", instance_id, detail="in no Auto Scaling group")
        return None
    group, state = membership["AutoScalingGroupName"], membership.get("LifecycleState")
    what = scaling_kind(state)
    if what == "leaving":
        journal.note("unchanged", instance_id, detail=f"already leaving {group} ({state})")
        return None
    if what == "stuck":
        raise StepFailed("NotDetachable", f"{instance_id} is {state} in {group}: Auto Scaling detaches only InService "
                                          f"or Standby instances; it stays under the group's control (see README)")
    if what == "detach" and a.autoscaling.detach(instance_id, group):
        if not journal.dry_run:  # what a release re-attaches to (responder.release, restoreAutoScaling)
            pre["autoScalingGroup"] = {"name": group, "lifecycleState": state}
        return None
    journal.note("waiting", instance_id, detail=f"{state} in {group}: detached once InService or Standby")
    return membership


def _detach_from_group(a: Any, journal: Journal, instance_id: str, pre: dict) -> dict | None:
    """First pass, before the network change: detach, or return the membership to wait for (the wait comes after
    the rest of the isolation, so that nothing else waits for it)."""
    with journal.step("auto_scaling", instance_id):
        return _try_detach(a, journal, instance_id, a.autoscaling.membership(instance_id), pre)
    return None


def wait_delays() -> Iterable[float]:
    """Seconds between looks at a settling Auto Scaling instance: 1, 2, 4, then every 8."""
    yield from (1.0, 2.0, 4.0)
    while True:
        yield 8.0


def _finish_detach(a: Any, journal: Journal, instance_id: str, membership: dict,
                   time_left: Callable[[], float], sleep: Callable[[float], None], pre: dict) -> None:
    """Wait for a settling instance (Pending, Pending:Wait, EnteringStandby...) to become detachable, within the
    task's time budget (`time_left()` seconds), then detach it; past the budget the step fails with the state."""
    with journal.step("auto_scaling", instance_id):
        for delay in wait_delays():
            if time_left() < delay:
                raise StepFailed("AutoScalingStillPending",
                                 f"{instance_id} is still {membership.get('LifecycleState')} in "
                                 f"{membership['AutoScalingGroupName']} at the end of the task's time budget: "
                                 "not detached (a later finding or a manual re-run detaches it)")
            sleep(delay)
            latest = a.autoscaling.membership(instance_id)
            if latest is not None and latest.get("LifecycleState") == membership.get("LifecycleState") \
                    and scaling_kind(latest.get("LifecycleState")) == "wait":
                continue  # no news: no second "waiting" entry
            membership = _try_detach(a, journal, instance_id, latest, pre)
            if membership is None:
                return


def _prepare_groups(a: Any, journal: Journal, vpc: str, existing: dict, incident: dict,
                    settings: Settings) -> dict[str, str]:
    """Create-or-reuse the VPC's untrack and quarantine groups and bring their rules to what they must be."""
    ids: dict[str, str] = {}
    current: dict[str, dict] = {}
    created: dict[str, str] = {}
    for purpose in (UNTRACK, QUARANTINE):
        found = existing.get((vpc, purpose))
        if found:
            ids[purpose], current[purpose] = found["GroupId"], found
            continue
        group_id = a.ec2.create_group(vpc, purpose, incident_id=incident["incidentId"])
        if group_id:
            ids[purpose], created[group_id] = group_id, purpose
        else:  # dry run
            ids[purpose] = f"<new {GROUP_NAMES[purpose]}-* in {vpc}>"
            current[purpose] = new_group(ids[purpose], vpc)
    if created:
        for group in a.ec2.groups(list(created)):
            current[created[group["GroupId"]]] = group
    changed = False
    for purpose in (UNTRACK, QUARANTINE):
        group = current[purpose]
        try:
            desired = desired_rules(purpose, settings.isolation_cidrs)
        except ValueError as exc:
            raise StepFailed("InvalidIsolationCidr", f"IR_ISOLATION_CIDRS: {exc}") from exc
        # exact, for both: a group carrying our tag may have been made (or edited) by anyone in the account
        for action, direction, rules in rule_changes(group, desired, exact=True):
            getattr(a.ec2, action)(ids[purpose], direction, permissions_of(rules))
            changed = True
    if not changed and not created:
        journal.note("unchanged", vpc, detail=f"{ids[QUARANTINE]} (quarantine) and {ids[UNTRACK]} (untrack) ready")
    return ids


def _isolate_network(a: Any, journal: Journal, instance: dict, incident: dict, settings: Settings,
                     pre: dict) -> None:
    instance_id = instance["InstanceId"]
    nics, vpcs = interfaces(instance), vpc_ids(instance)
    ready: dict[str, dict[str, str]] = {}
    existing: dict | None = None
    with journal.step("security_groups", ",".join(vpcs) or instance_id):
        if not nics:
            raise StepFailed("NoNetworkInterface", f"{instance_id} reports no network interface")
        existing = {}
        # several groups with our tag (a concurrent first run, or someone else's): the lowest id, every time
        for group in sorted(a.ec2.isolation_groups(vpcs), key=lambda g: g["GroupId"]):
            existing.setdefault((group["VpcId"], tag_map(group.get("Tags")).get(PURPOSE_TAG)), group)
    if existing is not None:
        for vpc in vpcs:
            with journal.step("security_groups", vpc):
                ready[vpc] = _prepare_groups(a, journal, vpc, existing, incident, settings)
    for nic in nics:
        eni, vpc = nic["NetworkInterfaceId"], nic.get("VpcId")
        with journal.step("network_isolation", eni):
            groups = ready.get(vpc)
            if not groups:
                raise StepFailed("QuarantineGroupUnavailable",
                                 f"no quarantine group in {vpc}: see the security_groups step")
            original = [g["GroupId"] for g in nic.get("Groups", [])]
            moves = interface_moves(original, groups[QUARANTINE], groups[UNTRACK])
            if not moves:
                journal.note("unchanged", eni, detail=f"already in {groups[QUARANTINE]} only")
            pre.setdefault("quarantineGroups", {})[vpc] = groups[QUARANTINE]
            for hop, group_ids in enumerate(moves):
                try:
                    a.ec2.set_interface_groups(eni, group_ids)
                except Exception as exc:
                    if group_ids == [groups[QUARANTINE]] and (hop > 0 or original == [groups[UNTRACK]]):
                        _never_left_open(a, journal, eni, original, groups[UNTRACK], exc)
                    raise


def _never_left_open(a: Any, journal: Journal, eni: str, original: list[str], untrack: str, exc: Exception) -> None:
    """The move to the quarantine group failed while the interface sits in the allow-all untrack group: that is
    more open than before the response, so it goes back to the groups it had (not a containment being undone: the
    containment did not happen). If even that fails, or it had no other group, the record says so loudly."""
    back = [g for g in original if g != untrack]
    if back:
        try:
            a.ec2.set_interface_groups(eni, back)
            journal.note("restored", eni, detail=f"quarantine move failed ({getattr(exc, 'response', {}).get('Error', {}).get('Code', type(exc).__name__)}): "
                                                 f"back in its original groups {back}, out of the allow-all group {untrack}")
            return
        except Exception as again:  # recorded right below, then the original error is raised by the caller
            exc = again
    journal.note("failed", eni, error="LeftInAllowAllGroup",
                 message=f"DANGER: interface {eni} is in the allow-all group {untrack} (the move to quarantine failed and "
                         f"it could not be returned to {back or 'its groups'}): move it to the quarantine group by hand")


def _swap_credentials(a: Any, journal: Journal, instance: dict, incident: dict, settings: Settings) -> None:
    instance_id = instance["InstanceId"]
    arn = (instance.get("IamInstanceProfile") or {}).get("Arn")
    name = profile_name(arn)
    if not arn:
        with journal.step("instance_profile", instance_id):
            journal.note("unchanged", instance_id, detail="no instance profile: the instance has no role credentials")
        return
    if name == settings.deny_all_profile:
        with journal.step("instance_profile", instance_id):
            journal.note("unchanged", instance_id, detail=f"already on the deny-all profile {name}")
        return
    with journal.step("revoke_older_sessions", arn):
        profile = a.iam.instance_profile(name)
        if profile is None:
            journal.note("not_found", arn, detail="the instance profile no longer exists")
        for listed in (profile or {}).get("Roles", []):
            role = a.iam.get_role(listed["RoleName"])
            if role is None:
                journal.note("not_found", listed.get("Arn", listed["RoleName"]), detail="the profile's role is gone")
                continue
            reason = protected_reason(role["Arn"], tag_map(role.get("Tags")), settings)
            if reason:
                journal.note("protected", role["Arn"], detail=f"sessions not revoked: {reason}")
                continue
            role_name = role["RoleName"]
            revoke(journal, role["Arn"], incident["cutoff"],
                   read=lambda n=role_name: a.iam.role_policy(n, REVOKE_POLICY_NAME),
                   write=lambda doc, n=role_name, r=role["Arn"]: a.iam.put_role_policy(n, REVOKE_POLICY_NAME, doc,
                                                                                      target=r))
    with journal.step("instance_profile", instance_id):
        associations = a.ec2.profile_associations(instance_id)
        if not associations:
            raise StepFailed("AssociationNotFound", f"{instance_id} reports {arn} but no current association")
        for association in associations:
            current = profile_name((association.get("IamInstanceProfile") or {}).get("Arn"))
            if current == settings.deny_all_profile:
                journal.note("unchanged", instance_id, detail=f"already on the deny-all profile {current}")
            else:
                a.ec2.replace_profile(association["AssociationId"], settings.deny_all_profile, target=instance_id)


LB_RESERVE = 30.0  # seconds left for the steps after the target groups when the look-up stops


def _deregister(a: Any, journal: Journal, instance: dict, time_left: Callable[[], float], pre: dict) -> None:
    instance_id = instance["InstanceId"]
    with journal.step("classic_load_balancers", instance_id):
        names = a.classic.holding(instance_id)
        if not names:
            journal.note("unchanged", instance_id, detail="registered with no Classic load balancer")
        for name in names:
            a.classic.deregister(name, instance_id)
            if not journal.dry_run:  # what a release registers it with again (responder.release)
                pre.setdefault("classicLoadBalancers", []).append(name)
    candidates: list[dict] | None = None
    with journal.step("target_groups", instance_id):
        candidates = a.target_groups.candidates(set(vpc_ids(instance)))
    if candidates is None:
        return
    ips, found, unchecked = addresses(instance), False, []
    for tg in candidates:
        arn = tg["TargetGroupArn"]
        if time_left() < LB_RESERVE:  # leave the rest of the task its time: record what was not looked at
            unchecked.append(arn)
            continue
        with journal.step("target_groups", arn):
            targets = registrations(a.target_groups.targets(arn), instance_id, ips, tg.get("TargetType", "instance"))
            if targets:
                found = True
                a.target_groups.deregister(arn, targets)
                if not journal.dry_run:  # the registrations with their ports, for a release (responder.release)
                    pre.setdefault("targetGroups", []).append({"targetGroupArn": arn,
                                                                              "targets": targets})
    if unchecked:
        with journal.step("target_groups", instance_id):
            raise StepFailed("TargetGroupsUnchecked",
                             f"time budget reached: {len(unchecked)} of {len(candidates)} target group(s) not checked "
                             f"(first: {unchecked[0]}); a re-run checks them")
    if not found:
        with journal.step("target_groups", instance_id):
            journal.note("unchanged", instance_id, detail=f"registered in none of {len(candidates)} target group(s)")


def later_incidents(current: dict[str, str], incident_id: str) -> str | None:
    """The new value of the ``ir:incidents`` tag once `incident_id` is recorded after the first incident (which
    keeps ``ir:incident``); None when nothing is to add (it is the first incident, or already listed). Ids are
    appended, space-separated, oldest first, while the value stays within AWS's 256 characters; a value that
    cannot take one more id is left as it is ("" is returned: recorded in the incident record only)."""
    first = current.get(INCIDENT_TAG)
    listed = current.get(LATER_INCIDENTS_TAG, "").split()
    if first in (None, incident_id) or incident_id in listed:
        return None
    value = " ".join([*listed, incident_id])
    return value if len(value) <= TAG_VALUE_LIMIT else ""


def _tag(a: Any, journal: Journal, instance: dict, incident: dict) -> None:
    """``ir:incident``: the first incident that isolated the instance, never replaced; later incidents are listed
    in ``ir:incidents``. ``ir:quarantine``: isolated, or incomplete if a step failed."""
    instance_id, incident_id = instance["InstanceId"], incident["incidentId"]
    current = tag_map(instance.get("Tags"))
    with journal.step("tag", instance_id):
        wanted = {INCIDENT_TAG: current.get(INCIDENT_TAG) or incident_id,
                  QUARANTINE_TAG: "incomplete" if journal.failures else "isolated"}
        missing = {k: v for k, v in wanted.items() if current.get(k) != v}
        if missing:
            a.ec2.tag(instance_id, missing)
        else:
            journal.note("unchanged", instance_id, detail="already tagged")
    later = later_incidents(current, incident_id)
    if later is None:
        return
    with journal.step("later_incident", instance_id):
        if later:
            a.ec2.tag(instance_id, {LATER_INCIDENTS_TAG: later})
        else:
            journal.note("skipped", instance_id, detail=f"{LATER_INCIDENTS_TAG} is full ({TAG_VALUE_LIMIT} characters): "
                                                        f"{incident_id} is in the incident record only")


# --------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------
DEFAULT_BUDGET = 60.0  # seconds a settling Auto Scaling instance is waited for when the caller gives no budget


def isolate(instance_id: str, incident: dict, *, adapters_for: Callable[[Journal], Any],
            settings: Settings, time_left: Callable[[], float] | None = None,
            sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Isolate one instance of `incident`; `adapters_for(journal)` gives the adapters (above).
    `time_left()`: seconds the task may still wait (Auto Scaling), default DEFAULT_BUDGET from now."""
    if time_left is None:
        until = time.monotonic() + DEFAULT_BUDGET
        time_left = lambda: until - time.monotonic()  # noqa: E731
    journal = Journal(dry_run=bool(incident.get("dryRun")))
    a = adapters_for(journal)
    arn = instance_arn(incident, instance_id)
    try:
        instance = a.ec2.describe_instance(instance_id)
    except Exception as exc:
        code = recorded(exc, f"DescribeInstances {instance_id}", "ec2")
        journal.note("protected", arn, detail=f"{UNVERIFIABLE}: cannot describe the instance", error=code,
                     message=str(exc)[:400])
        return _result(instance_id, arn, journal, "protection_unverified", reason=UNVERIFIABLE)
    state = ((instance or {}).get("State") or {}).get("Name")
    if instance is None or state in GONE_STATES:
        journal.note("not_found", arn, detail=f"instance is {state}" if state else "no such instance")
        return _result(instance_id, arn, journal, "not_found")
    reason = protected_reason(arn, tag_map(instance.get("Tags")), settings, approved=approved(incident))
    if reason:
        journal.note("protected", arn, detail=reason)
        return _result(instance_id, arn, journal,
                       "protection_unverified" if reason == UNVERIFIABLE else "protected", reason=reason)

    metadata = summarize(instance)
    if not journal.dry_run:  # the pre-state a release restores, in the timeline: every attempt's survives
        journal.note("recorded", arn, step="capture_metadata", detail=PRE_STATE_NOTE,
                     preState={"instanceProfileArn": metadata["instanceProfileArn"],
                               "interfaces": [{k: n[k] for k in ("networkInterfaceId", "vpcId", "groups")}
                                              for n in metadata["interfaces"]]})
    metadata["evidence"] = _capture(a, journal, instance, incident, arn)
    _protect(a, journal, instance)
    # what a release needs beyond the metadata (responder.release): the group it detached from, the quarantine
    # group per VPC, the load-balancer registrations (with their ports) it removed
    pre: dict[str, Any] = {}
    settling = _detach_from_group(a, journal, instance_id, pre)
    _isolate_network(a, journal, instance, incident, settings, pre)
    acl_entries = (network_acl.cut_tracked_flows(a, journal, interfaces(instance), addresses(instance),
                                                 settings.isolation_cidrs)
                   if settings.network_acl_isolation else [])
    _swap_credentials(a, journal, instance, incident, settings)
    _deregister(a, journal, instance, time_left, pre)
    if settling is not None:
        _finish_detach(a, journal, instance_id, settling, time_left, sleep, pre)
    _tag(a, journal, instance, incident)
    if (pre or acl_entries) and not journal.dry_run:  # what this attempt removed, beside the changes it made
        journal.note("recorded", arn, step="capture_metadata", detail=REMOVED_NOTE, removed=pre,
                     networkAclEntries=acl_entries)
    return _result(instance_id, arn, journal, final_status(journal), metadata=metadata, networkAclEntries=acl_entries,
                   preState=pre or None)
