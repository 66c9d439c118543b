"""Release of an isolated instance from the saved pre-state (issue 15, item 3), through the shipped state machine: a
GuardDuty EC2 finding isolates a web-tier instance (two interfaces with different groups, an instance profile, a
Classic load balancer, two target groups with their ports, an Auto Scaling group, network ACL deny entries); a
release request restores exactly that, read back through boto3, while termination protection and the snapshots
stay. A conflicting change refuses the whole release with nothing changed; a dry run plans and changes nothing;
a second release finds nothing left to undo; bad input is refused naming the field."""
from __future__ import annotations

import json
import uuid

import pytest

from demo.world_instance import build
from state_machines import local
from tests.worlds import isolation as w
from tests.worlds.deployment import deployment
from tests.worlds.operations import record
from tests.worlds.workflow import event

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
DENY_ALL = "ir-quarantine-deny-all"

dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def acl_entries(dep, vpc_id: str) -> dict[str, list]:
    """{ACL id: its non-default entries (number, egress, action, CIDR)} of the VPC."""
    acls = dep.client("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NetworkAcls"]
    return {a["NetworkAclId"]: sorted((e["RuleNumber"], e["Egress"], e["RuleAction"], e.get("CidrBlock"))
                                      for e in a["Entries"] if e["RuleNumber"] < 32767) for a in acls}


def snapshots(dep) -> list[tuple]:
    return sorted((s["SnapshotId"], s["State"], s["VolumeId"]) for s in dep.client("ec2").describe_snapshots(
        OwnerIds=["self"])["Snapshots"])


def pre_state(dep, world: dict) -> dict:
    """What a release restores, read through boto3: groups per interface, profile, the instance's registrations
    with ports, Classic load balancer, Auto Scaling membership, the VPC's network ACL entries (the replacement the
    group launched is not the instance's state)."""
    instance_id = world["instanceId"]
    state = w.instance_state(dep, instance_id)
    return {"interfaces": state["interfaces"], "profile": state["profile"],
            "targetGroups": {k: [t for t in v if t[0] == instance_id] for k, v in state["targetGroups"].items()
                             if k.startswith(world["name"])},
            "classic": instance_id in state["classic"][world["classicLoadBalancer"]],
            "asg": [(i["AutoScalingGroupName"], i["LifecycleState"]) for i in state["asg"]],
            "acl": acl_entries(dep, world["vpcId"])}


def isolated_world(dep, *, manual_twice: bool = False) -> tuple[dict, str, dict]:
    """The demo web tier plus a second interface in another group and a second target group on port 8443, isolated
    from a GuardDuty EC2 finding (or, `manual_twice`, by a manual request started twice: the second attempt's
    result holds the instance as the first left it). Returns (world, incident id, the pre-state)."""
    world = build(dep, name=f"rel{uuid.uuid4().hex[:6]}")
    ec2, elbv2 = dep.client("ec2"), dep.client("elbv2")
    w.second_interface(dep, world["instanceId"], {"subnetId": world["subnetIds"][0],
                                                  "groupId": world["loadBalancerSecurityGroupId"]})
    tg = elbv2.create_target_group(Name=f"{world['name']}-admin", Protocol="HTTPS", Port=443, VpcId=world["vpcId"],
                                   TargetType="instance")["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": world["instanceId"], "Port": 8443}])
    before = pre_state(dep, world)
    assert len(before["interfaces"]) == 2 and len(set(map(tuple, before["interfaces"].values()))) == 2
    assert before["targetGroups"][f"{world['name']}-admin"] == [(world["instanceId"], 8443)]
    assert before["asg"] and before["profile"].endswith(world["instanceProfile"])
    ev = event("guardduty-instance.json", account=MEMBER, region=REGION)
    ev["detail"]["resource"]["instanceDetails"]["instanceId"] = world["instanceId"]
    ev["detail"]["id"] = uuid.uuid4().hex
    incident_id = f"gd-{ev['detail']['id']}"
    if manual_twice:
        incident_id = f"IR-{uuid.uuid4().hex[:8]}"
        ev = {"manual": {"accountId": MEMBER, "region": REGION, "reason": "suspected miner", "incidentId": incident_id,
                         "instances": [world["instanceId"]]}}
        first = local.execute(ev, dep)
        assert first.status == "SUCCEEDED" and "IsolateInstance" in first.states, first.cause
    run = local.execute(ev, dep)
    assert "IsolateInstance" in run.states, run.cause
    if manual_twice:  # the second attempt found everything done: its result's metadata is the isolated instance
        result = record(dep, incident_id)["results"][f"isolation:{world['instanceId']}"]
        assert result["status"] == "already_isolated"
        assert all(len(n["groups"]) == 1 for n in result["metadata"]["interfaces"])
    after = pre_state(dep, world)
    assert after["profile"].endswith(DENY_ALL) and not after["asg"] and after["acl"] != before["acl"]
    assert all(len(g) == 1 for g in after["interfaces"].values()) and after["interfaces"] != before["interfaces"]
    assert ec2.describe_instance_attribute(InstanceId=world["instanceId"], Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is True
    return world, incident_id, before


def release(incident_id: str, instances: list[str], **extra) -> dict:
    return {"release": {"incidentId": incident_id, "reason": "false positive: load test from the QA subnet",
                        "instances": instances, **extra}}


def test_release_restores_the_instances_exact_pre_state_and_a_second_release_changes_nothing(dep):
    world, incident_id, before = isolated_world(dep)
    instance_id = world["instanceId"]
    evidence = snapshots(dep)
    plan = local.execute(release(incident_id, [instance_id], dryRun=True, restoreAutoScaling=True), dep)
    assert plan.status == "SUCCEEDED", plan.cause
    assert plan.output["outcome"] == "release_planned"
    # profile, 2 interfaces, the Classic LB, 2 target groups, the group, and the ACL entries
    assert plan.output["release"]["targets"][0]["changes"] >= 7
    contained = pre_state(dep, world)

    run = local.execute(release(incident_id, [instance_id], restoreAutoScaling=True), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.states == ["Triage", "Route", "Release", "Finalize", "Outcome", "Done"]
    assert run.output["outcome"] == "released"
    target = run.output["release"]["targets"][0]
    assert target["status"] == "released" and target["target"].endswith(f":instance/{instance_id}")
    now = pre_state(dep, world)
    assert {k: v for k, v in now.items() if k != "asg"} == {k: v for k, v in before.items() if k != "asg"}
    assert [g for g, _ in now["asg"]] == [g for g, _ in before["asg"]] == [world["autoScalingGroup"]]
    ec2 = dep.client("ec2")
    assert ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is True  # never undone
    assert snapshots(dep) == evidence  # evidence untouched
    assert w.responder_groups(dep, world["vpcId"])  # the quarantine group stays
    item = record(dep, incident_id)
    ours = sorted(e["api"] for e in item["timeline"] if e.get("task") == "release" and e.get("status") == "done")
    assert "ec2:ReplaceIamInstanceProfileAssociation" in ours and "autoscaling:AttachInstances" in ours
    assert ours.count("ec2:ModifyNetworkInterfaceAttribute") == 2 and "ec2:DeleteNetworkAclEntry" in ours
    assert "-release-" in run.output["manifest"]["key"]
    # the dry run changed nothing
    assert contained != before

    again = local.execute(release(incident_id, [instance_id], restoreAutoScaling=True), dep)
    assert again.status == "SUCCEEDED", again.cause
    assert again.output["outcome"] == "already_released"
    assert pre_state(dep, world) == now


def test_a_release_after_a_second_attempt_restores_the_first_attempts_pre_state(dep):
    """The same manual request started twice (a responder re-running it): the second attempt's result captured
    the isolated instance, the timeline keeps the first attempt's capture, and the release restores the pre-state."""
    world, incident_id, before = isolated_world(dep, manual_twice=True)
    run = local.execute(release(incident_id, [world["instanceId"]], restoreAutoScaling=True), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "released"
    now = pre_state(dep, world)
    assert {k: v for k, v in now.items() if k != "asg"} == {k: v for k, v in before.items() if k != "asg"}
    assert [g for g, _ in now["asg"]] == [g for g, _ in before["asg"]] == [world["autoScalingGroup"]]


def test_without_restore_auto_scaling_the_instance_stays_out_of_its_group(dep):
    world, incident_id, before = isolated_world(dep)
    run = local.execute(release(incident_id, [world["instanceId"]]), dep)
    assert run.status == "SUCCEEDED", run.cause
    now = pre_state(dep, world)
    assert now["asg"] == [] and now["interfaces"] == before["interfaces"] and now["profile"] == before["profile"]
    notes = run.output["release"]["targets"][0]["notes"]
    assert any("restoreAutoScaling" in n for n in notes)


def change_groups(dep, world):
    eni = sorted(w.interface_groups(dep, world["instanceId"]))[0]
    dep.client("ec2").modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[world["securityGroupId"]])
    return eni


def change_profile(dep, world):
    ec2 = dep.client("ec2")
    association = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [world["instanceId"]]}])["IamInstanceProfileAssociations"][0]
    other = w.profile(dep)
    ec2.replace_iam_instance_profile_association(AssociationId=association["AssociationId"],
                                                 IamInstanceProfile={"Name": other["name"]})
    return other["name"]


def change_acl(dep, world):
    item = record(dep, next(iter([world["incidentId"]])))
    entry = item["results"][f"isolation:{world['instanceId']}"]["networkAclEntries"][0]
    ec2 = dep.client("ec2")
    ec2.replace_network_acl_entry(NetworkAclId=entry["networkAclId"], RuleNumber=int(entry["ruleNumber"]),
                                  Protocol="-1", RuleAction="allow", Egress=entry["direction"] == "outbound",
                                  CidrBlock=entry["cidr"])
    return entry["networkAclId"]


@pytest.mark.parametrize("change", [change_groups, change_profile, change_acl])
def test_a_conflicting_change_refuses_the_whole_release_and_nothing_changes(dep, change):
    world, incident_id, _ = isolated_world(dep)
    world["incidentId"] = incident_id
    named = change(dep, world)
    changed = pre_state(dep, world)
    run = local.execute(release(incident_id, [world["instanceId"]], restoreAutoScaling=True), dep)
    assert run.status == "FAILED" and run.error == "ReleaseRefused", run.cause
    assert world["instanceId"] in run.cause and named in run.cause and "nothing was released" in run.cause
    assert pre_state(dep, world) == changed


@pytest.mark.parametrize("request_, field", [
    ({"release": {"incidentId": "x", "reason": "r", "instances": ["i-nothex!"]}}, "release.instances[0]"),
    ({"release": {"incidentId": "x", "reason": "r", "instances": "i-0123456789abcdef0"}}, "release.instances"),
    ({"release": {"incidentId": "x", "reason": "r", "instances": ["i-0123456789abcdef0"],
                  "restoreAutoScaling": "yes"}}, "release.restoreAutoScaling"),
    ({"release": {"incidentId": "x", "reason": "r", "iamUsers": ["u"], "restoreAutoScaling": True}},
     "release.restoreAutoScaling"),
    ({"release": {"incidentId": "x", "reason": "r", "instances": [f"i-{n:017x}" for n in range(51)]}},
     "release.instances"),
])
def test_bad_instance_release_input_is_refused_naming_the_field(dep, request_, field):
    run = local.execute(request_, dep)
    assert run.status == "FAILED" and run.error == "InvalidInput"
    assert field in run.cause


def test_only_instances_this_incident_isolated_can_be_released(dep):
    world, incident_id, _ = isolated_world(dep)
    contained = pre_state(dep, world)
    run = local.execute(release(incident_id, [world["instanceId"], "i-0123456789abcdef0"]), dep)
    assert run.status == "FAILED" and run.error == "InvalidInput" and "release.instances[1]" in run.cause
    assert pre_state(dep, world) == contained
    assert json.dumps(run.cause)
