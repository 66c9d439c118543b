"""Instance isolation against moto, step by step: the full web tier, several interfaces in several VPCs, no
profile, no group or load balancer, second runs, dry runs, gone and protected instances, and failures."""
from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from demo.world_instance import build
from responder.aws.ec2 import GROUP_NAMES, QUARANTINE, UNTRACK
from responder.isolation import isolate, metadata_key
from tests.worlds import isolation as w
from tests.worlds.deployment import deployment

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
ALL = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


@pytest.fixture(scope="module")
def world(dep):
    """The web tier, isolated once; tests read the outcome (and the second run)."""
    world = build(dep)
    before = w.instance_state(dep, world["instanceId"])
    desired = dep.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[world["autoScalingGroup"]])["AutoScalingGroups"][0]["DesiredCapacity"]
    incident = w.incident(dep)
    result = run(dep, world["instanceId"], incident)
    return {**world, "before": before, "desired": desired, "incident": incident, "result": result}


@pytest.fixture(scope="module")
def net(dep):
    return w.vpc(dep, 40)


def run(dep, instance_id, incident, settings=None, **adapter_options):
    return isolate(instance_id, incident, adapters_for=w.adapters_for(dep, **adapter_options),
                   settings=settings or w.settings_of(dep))


def apis(result, status=("done",)):
    return [e.get("api") for e in result["entries"] if e["status"] in status]


# -- the full web tier ----------------------------------------------------------------------------------
def test_web_tier_instance_is_isolated(world):
    result = world["result"]
    assert result["status"] == "isolated", result.get("message")
    assert result["kind"] == "instance" and result["instanceId"] == world["instanceId"]
    assert result["steps"] == {
        "capture_metadata": "done", "termination_protection": "done", "shutdown_behavior": "unchanged",
        "delete_on_termination": "done", "auto_scaling": "done", "security_groups": "done",
        "network_isolation": "done", "connection_tracking": "done", "network_acl": "done",
        "revoke_older_sessions": "done", "instance_profile": "done",
        "classic_load_balancers": "unchanged", "target_groups": "done", "tag": "done"}
    assert not [e for e in result["entries"] if e["status"] == "failed"]


def test_metadata_is_captured_before_any_change(dep, world):
    meta = world["result"]["metadata"]
    assert meta["instanceProfileArn"] == world["instanceProfileArn"]
    assert meta["interfaces"][0]["groups"] == [world["securityGroupId"]]
    assert {v["volumeId"] for v in meta["volumes"]} == set(world["volumes"].values())
    assert all(v["deleteOnTermination"] for v in meta["volumes"])
    assert meta["tags"]["Environment"] == "production"
    key = metadata_key(world["incident"]["incidentId"], world["instanceId"])
    assert meta["evidence"]["uri"] == f"s3://{dep.bucket}/{key}"
    body = dep.client("s3", account=FORENSICS).get_object(Bucket=dep.bucket, Key=key)["Body"].read()
    assert meta["evidence"]["sha256"] == "sha256:" + hashlib.sha256(body).hexdigest()
    stored = json.loads(body)
    assert stored["instance"]["IamInstanceProfile"]["Arn"] == world["instanceProfileArn"]
    assert stored["instance"]["NetworkInterfaces"][0]["Groups"][0]["GroupId"] == world["securityGroupId"]
    # the capture is the first change of the run
    assert apis(world["result"])[0] == "s3:PutObject"


def test_termination_protection_shutdown_stop_and_volumes_kept(dep, world):
    state = w.instance_state(dep, world["instanceId"])
    assert state["termination"] is True and state["shutdown"] == "stop"
    assert state["deleteOnTermination"] == {"/dev/xvda": False, "/dev/sdf": False, "/dev/sdg": False}
    assert world["before"]["deleteOnTermination"] == {"/dev/xvda": True, "/dev/sdf": True, "/dev/sdg": True}
    # one call for the three volumes
    assert apis(world["result"]).count("ec2:ModifyInstanceAttribute") == 2


def test_interface_is_in_the_quarantine_group_only(dep, world):
    groups = w.responder_groups(dep, world["vpcId"])
    quarantine, untrack = groups[QUARANTINE], groups[UNTRACK]
    assert quarantine["GroupName"].startswith(GROUP_NAMES[QUARANTINE] + "-")  # a fresh name: never trusted by name
    assert list(w.interface_groups(dep, world["instanceId"]).values()) == [[quarantine["GroupId"]]]
    assert quarantine["IpPermissions"] == [] and quarantine["IpPermissionsEgress"] == []
    ingress = {(p["IpProtocol"], r.get("CidrIp") or r.get("CidrIpv6"))
               for p in untrack["IpPermissions"] for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])}
    assert ingress == {("-1", "0.0.0.0/0"), ("-1", "::/0")}
    # first the allow-all group (flows become untracked), then the quarantine group
    moves = [e for e in world["result"]["entries"] if e.get("api") == "ec2:ModifyNetworkInterfaceAttribute"
             and e["step"] == "network_isolation"]
    assert len(moves) == 2 and all(e["status"] == "done" for e in moves)


def test_out_of_the_group_without_shrinking_it(dep, world):
    asg = dep.client("autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[world["autoScalingGroup"]])["AutoScalingGroups"][0]
    assert world["instanceId"] not in [i["InstanceId"] for i in group["Instances"]]
    assert group["DesiredCapacity"] == world["desired"]
    assert world["before"]["asg"][0]["AutoScalingGroupName"] == world["autoScalingGroup"]
    assert w.instance_state(dep, world["instanceId"])["asg"] == []


def test_out_of_every_load_balancer(dep, world):
    state = w.instance_state(dep, world["instanceId"])
    assert world["instanceId"] in [t[0] for t in world["before"]["targetGroups"][f"{world['name']}-tg"]]
    assert world["instanceId"] not in [t[0] for t in state["targetGroups"][f"{world['name']}-tg"]]
    assert world["instanceId"] not in state["classic"][world["classicLoadBalancer"]]


def test_profile_swapped_and_older_sessions_of_its_role_revoked(dep, world):
    state = w.instance_state(dep, world["instanceId"])
    assert state["profile"].endswith(":instance-profile/ir-quarantine-deny-all")
    doc = dep.client("iam").get_role_policy(RoleName=world["roleName"], PolicyName="AWSRevokeOlderSessions")
    condition = doc["PolicyDocument"]["Statement"][0]["Condition"]
    assert condition == {"DateLessThan": {"aws:TokenIssueTime": world["incident"]["cutoff"]}}
    # revoked before the swap: a retry after a failed swap still knows the original role
    order = apis(world["result"])
    assert order.index("iam:PutRolePolicy") < order.index("ec2:ReplaceIamInstanceProfileAssociation")


def test_tagged_without_touching_the_workload_tags(dep, world):
    tags = w.instance_state(dep, world["instanceId"])["tags"]
    assert tags["ir:incident"] == world["incident"]["incidentId"] and tags["ir:quarantine"] == "isolated"
    assert tags["Environment"] == "production" and tags["Name"] == f"{world['name']}-api-1"


def test_second_run_changes_nothing(dep, world):
    before = w.instance_state(dep, world["instanceId"])
    again = run(dep, world["instanceId"], world["incident"])
    assert again["status"] == "already_isolated"
    assert apis(again, ("done", "planned", "failed")) == []
    assert set(again["steps"].values()) == {"unchanged"}
    assert w.instance_state(dep, world["instanceId"]) == before
    # the metadata captured before the first change is not overwritten
    key = metadata_key(world["incident"]["incidentId"], world["instanceId"])
    stored = json.loads(dep.client("s3", account=FORENSICS).get_object(Bucket=dep.bucket, Key=key)["Body"].read())
    assert stored["instance"]["IamInstanceProfile"]["Arn"] == world["instanceProfileArn"]


# -- shapes of instances ----------------------------------------------------------------------------------
def test_two_interfaces_in_two_vpcs_each_get_their_vpcs_quarantine_group(dep):
    a, b = w.vpc(dep, 41), w.vpc(dep, 42)
    instance_id = w.instance(dep, a)
    eni_b = w.second_interface(dep, instance_id, b)
    before = w.interface_groups(dep, instance_id)
    assert before[eni_b] == [b["groupId"]]  # moto, as EC2: each interface keeps its own groups
    result = run(dep, instance_id, w.incident(dep))
    assert result["status"] == "isolated", result.get("message")
    after = w.interface_groups(dep, instance_id)
    qa, qb = w.responder_groups(dep, a["vpcId"])[QUARANTINE], w.responder_groups(dep, b["vpcId"])[QUARANTINE]
    assert after[eni_b] == [qb["GroupId"]]
    assert [g for eni, g in after.items() if eni != eni_b] == [[qa["GroupId"]]]
    assert result["metadata"]["vpcIds"] == sorted([a["vpcId"], b["vpcId"]])
    assert len([e for e in result["entries"] if e.get("api") == "ec2:ModifyNetworkInterfaceAttribute"
                and e["step"] == "network_isolation"]) == 4


def test_instance_without_profile_and_outside_any_group_or_load_balancer(dep, net):
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id, w.incident(dep))
    assert result["status"] == "isolated", result.get("message")
    assert "revoke_older_sessions" not in result["steps"]
    assert result["steps"]["instance_profile"] == "unchanged"
    assert result["steps"]["auto_scaling"] == "unchanged"
    assert result["steps"]["classic_load_balancers"] == "unchanged"
    assert result["steps"]["target_groups"] == "unchanged"
    assert "IamInstanceProfile" not in w.describe(dep, instance_id)  # no profile is forced on it
    assert dep.client("ec2").describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"] == []


def test_quarantine_group_is_reused_by_tag_and_repaired(dep, net):
    first = w.instance(dep, net)
    assert run(dep, first, w.incident(dep))["status"] == "isolated"
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]
    ec2 = dep.client("ec2")  # someone opens SSH to the world on the quarantine group
    ec2.authorize_security_group_ingress(GroupId=quarantine["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    second = w.instance(dep, net)
    result = run(dep, second, w.incident(dep))
    assert result["status"] == "isolated"
    assert "ec2:CreateSecurityGroup" not in apis(result)
    revoked = [e for e in result["entries"] if e.get("api") == "ec2:RevokeSecurityGroupIngress"]
    assert [e["target"] for e in revoked] == [quarantine["GroupId"]]
    assert w.responder_groups(dep, net["vpcId"])[QUARANTINE]["IpPermissions"] == []
    assert list(w.interface_groups(dep, second).values()) == list(w.interface_groups(dep, first).values())


def test_isolation_cidrs_are_the_only_traffic_allowed(dep):
    net = w.vpc(dep, 43, ipv6=True)  # a new group there has a ::/0 egress rule too: revoked as well
    instance_id = w.instance(dep, net)
    settings = w.settings_of(dep, isolation_cidrs=("10.99.0.0/24", "2001:db8::/64"))
    assert run(dep, instance_id, w.incident(dep), settings)["status"] == "isolated"
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]
    for key in ("IpPermissions", "IpPermissionsEgress"):
        rules = {(p["IpProtocol"], r.get("CidrIp") or r.get("CidrIpv6"))
                 for p in quarantine[key] for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])}
        assert rules == {("-1", "10.99.0.0/24"), ("-1", "2001:db8::/64")}, key
    # configuration removed later: the next isolation in that VPC takes the rules away again
    other = w.instance(dep, net)
    assert run(dep, other, w.incident(dep))["status"] == "isolated"
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]
    assert quarantine["IpPermissions"] == [] and quarantine["IpPermissionsEgress"] == []


def test_every_classic_load_balancer_and_target_group_is_left(dep, net):
    instance_id = w.instance(dep, net)
    ip = w.describe(dep, instance_id)["PrivateIpAddress"]
    elb, elbv2 = dep.client("elb"), dep.client("elbv2")
    for name in ("lb-one", "lb-two"):
        elb.create_load_balancer(LoadBalancerName=name, Subnets=[net["subnetId"]],
                                 Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
        elb.register_instances_with_load_balancer(LoadBalancerName=name, Instances=[{"InstanceId": instance_id}])
    by_id = elbv2.create_target_group(Name="by-id", Protocol="HTTP", Port=80, VpcId=net["vpcId"])["TargetGroups"][0]
    by_ip = elbv2.create_target_group(Name="by-ip", Protocol="HTTP", Port=80, VpcId=net["vpcId"],
                                      TargetType="ip")["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=by_id["TargetGroupArn"],
                           Targets=[{"Id": instance_id, "Port": 80}, {"Id": instance_id, "Port": 8080}])
    elbv2.register_targets(TargetGroupArn=by_ip["TargetGroupArn"], Targets=[{"Id": ip, "Port": 80}])
    other = w.instance(dep, net)
    elbv2.register_targets(TargetGroupArn=by_id["TargetGroupArn"], Targets=[{"Id": other, "Port": 80}])

    result = run(dep, instance_id, w.incident(dep))
    assert result["status"] == "isolated", result.get("message")
    state = w.instance_state(dep, instance_id)
    assert state["classic"]["lb-one"] == [] and state["classic"]["lb-two"] == []
    assert state["targetGroups"]["by-id"] == [(other, 80)]  # the healthy neighbour stays
    assert state["targetGroups"]["by-ip"] == []
    deregistered = [e["target"] for e in result["entries"] if e.get("api") == "elasticloadbalancing:DeregisterTargets"]
    assert sorted(deregistered) == sorted([by_id["TargetGroupArn"], by_ip["TargetGroupArn"]])


def test_interface_left_in_the_untrack_group_goes_straight_to_quarantine(dep, net):
    instance_id = w.instance(dep, net)
    assert run(dep, instance_id, w.incident(dep, dry_run=True))["status"] == "planned"
    first = w.instance(dep, net)
    run(dep, first, w.incident(dep))  # makes sure the VPC's groups exist
    groups = w.responder_groups(dep, net["vpcId"])
    eni = next(iter(w.interface_groups(dep, instance_id)))
    dep.client("ec2").modify_network_interface_attribute(NetworkInterfaceId=eni, Groups=[groups[UNTRACK]["GroupId"]])
    result = run(dep, instance_id, w.incident(dep))
    moves = [e for e in result["entries"] if e.get("api") == "ec2:ModifyNetworkInterfaceAttribute"
             and e["step"] == "network_isolation"]
    assert len(moves) == 1
    assert w.interface_groups(dep, instance_id)[eni] == [groups[QUARANTINE]["GroupId"]]


# -- gone, protected, dry run --------------------------------------------------------------------------------
def test_terminated_instance_is_not_found_and_nothing_changes(dep):
    net = w.vpc(dep, 44)
    instance_id = w.instance(dep, net)
    dep.client("ec2").terminate_instances(InstanceIds=[instance_id])
    result = run(dep, instance_id, w.incident(dep))
    assert result["status"] == "not_found"
    assert [e["status"] for e in result["entries"]] == ["not_found"]
    assert "terminated" in result["entries"][0]["detail"]
    assert w.responder_groups(dep, net["vpcId"]) == {}  # not even a group was created


def test_unknown_instance_is_not_found(dep):
    result = run(dep, "i-0123456789abcdef0", w.incident(dep))
    assert result["status"] == "not_found" and result["entries"][0]["detail"] == "no such instance"


def test_protected_instance_is_untouched(dep, net):
    instance_id = w.instance(dep, net, tags={"ir:protected": "true"})
    before = w.instance_state(dep, instance_id)
    result = run(dep, instance_id, w.incident(dep))
    assert result["status"] == "protected" and "ir:protected=true" in result["reason"]
    assert [e["status"] for e in result["entries"]] == ["protected"]
    assert w.instance_state(dep, instance_id) == before


class _Unreadable:
    """An EC2 client whose DescribeInstances is denied."""

    def __init__(self, client):
        self._client = client
        self.meta = client.meta

    def describe_instances(self, **_):
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, "DescribeInstances")

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_unreadable_instance_fails_closed(dep, net):
    instance_id = w.instance(dep, net)
    before = w.instance_state(dep, instance_id)
    result = run(dep, instance_id, w.incident(dep), ec2_client=_Unreadable(dep.client("ec2")))
    assert result["status"] == "protection_unverified"
    assert result["entries"][0]["error"] == "UnauthorizedOperation"
    assert w.instance_state(dep, instance_id) == before


def test_dry_run_plans_every_change_and_makes_none(dep):
    world = build(dep)
    net_vpc = world["vpcId"]
    before = w.instance_state(dep, world["instanceId"])
    result = run(dep, world["instanceId"], w.incident(dep, dry_run=True))
    assert result["status"] == "planned"
    assert w.instance_state(dep, world["instanceId"]) == before
    assert w.responder_groups(dep, net_vpc) == {}
    planned = apis(result, ("planned",))
    for api in ("s3:PutObject", "ec2:ModifyInstanceAttribute", "autoscaling:DetachInstances",
                "ec2:CreateSecurityGroup", "ec2:RevokeSecurityGroupEgress", "ec2:ModifyNetworkInterfaceAttribute",
                "iam:PutRolePolicy", "ec2:ReplaceIamInstanceProfileAssociation",
                "elasticloadbalancing:DeregisterTargets", "ec2:CreateTags"):
        assert api in planned, api
    moves = [e for e in result["entries"] if e.get("api") == "ec2:ModifyNetworkInterfaceAttribute"
             and e["step"] == "network_isolation"]
    assert [m["params"]["Groups"] for m in moves] == [[f"<new ir-untrack-flows-* in {net_vpc}>"],
                                                      [f"<new ir-quarantine-* in {net_vpc}>"]]
    assert "Body" not in result["entries"][0]["params"]  # the plan does not carry the metadata document
    assert not [e for e in result["entries"] if e["status"] == "done"]


def test_without_evidence_bucket_the_capture_is_skipped(dep, net):
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id, w.incident(dep), evidence=False)
    assert result["steps"]["capture_metadata"] == "skipped"
    assert result["status"] == "isolated" and result["metadata"]["evidence"] is None


# -- failures ------------------------------------------------------------------------------------------------
def test_a_failing_step_undoes_nothing_and_a_rerun_finishes(dep, net):
    p = w.profile(dep)
    instance_id = w.instance(dep, net, profile_name=p["name"])
    settings = w.settings_of(dep, deny_all_profile="ir-missing-deny-all")  # member stack out of date
    incident = w.incident(dep)
    result = run(dep, instance_id, incident, settings)
    assert result["status"] == "failed"
    assert result["steps"]["instance_profile"] == "failed"
    assert result["error"] == "NoSuchEntity" and result["message"].startswith("instance_profile on ")
    failed_later = {s for s, status in result["steps"].items() if status == "failed"}
    assert failed_later == {"instance_profile"}
    # everything else stands: isolated network, revoked sessions, protection; tag says incomplete
    state = w.instance_state(dep, instance_id)
    assert list(state["interfaces"].values()) == [[w.responder_groups(dep, net["vpcId"])[QUARANTINE]["GroupId"]]]
    assert state["termination"] is True and state["profile"] == p["arn"]
    assert "AWSRevokeOlderSessions" in state["rolePolicies"][p["roleName"]]
    assert state["tags"]["ir:quarantine"] == "incomplete"

    rerun = run(dep, instance_id, incident)
    assert rerun["status"] == "isolated"
    assert apis(rerun) == ["ec2:ReplaceIamInstanceProfileAssociation", "ec2:CreateTags"]
    assert w.instance_state(dep, instance_id)["tags"]["ir:quarantine"] == "isolated"


def test_a_concurrent_first_run_makes_its_own_groups_and_later_runs_settle_on_one(dep, monkeypatch):
    net = w.vpc(dep, 45)
    first = w.instance(dep, net)
    run(dep, first, w.incident(dep))
    # another execution created the groups between this run's lookup and its create call
    from responder.aws.ec2 import Ec2
    with monkeypatch.context() as m:
        m.setattr(Ec2, "isolation_groups", lambda self, vpcs: [])
        second = w.instance(dep, net)
        result = run(dep, second, w.incident(dep))
    assert result["status"] == "isolated", result.get("message")
    creates = [e for e in result["entries"] if e.get("api") == "ec2:CreateSecurityGroup"]
    assert [e["status"] for e in creates] == ["done", "done"]  # fresh names: no InvalidGroup.Duplicate
    tagged = dep.client("ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [net["vpcId"]]}, {"Name": "tag:ir:purpose", "Values": [QUARANTINE]}])
    ids = sorted(g["GroupId"] for g in tagged["SecurityGroups"])
    assert len(ids) == 2
    third = w.instance(dep, net)  # every later run picks the same one of the two (the lowest id), exact rules
    run(dep, third, w.incident(dep))
    assert list(w.interface_groups(dep, third).values()) == [[ids[0]]]
