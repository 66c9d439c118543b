"""Issue 13's isolation points through the shipped state machine (manual requests, executed locally), with the AWS
state read back: a squatted group name while new groups are not yet visible, a Spot instance, an Auto Scaling
instance still Pending and one in a warm pool, a full network ACL, an ip target registered from a peered VPC, and
a second incident on an isolated instance. The moto gaps that make the world behave like AWS are switched on in
the local runtime (state_machines/gaps_ec2.py, gaps_autoscaling.py), never in production code."""
from __future__ import annotations

import uuid

import pytest

from responder.aws.ec2 import GROUP_NAMES, QUARANTINE
from state_machines import gaps_autoscaling, gaps_ebs, gaps_ec2, local
from tests.worlds import isolation as w
from tests.worlds.evidence import dep, fresh_hooks  # noqa: F401 - shared fixtures
from tests.worlds.operations import record
from tests.worlds.reliability import instance_item, summary

MEMBER, REGION = "444455556666", "eu-west-1"
_octets = iter(range(150, 250))


@pytest.fixture(autouse=True)
def switches(fresh_hooks):  # noqa: F811 - the shared fixture
    gaps_ebs.set_pending_polls(0)  # evidence only has to run here
    yield
    gaps_ec2.reset()
    gaps_autoscaling.reset()


def manual(dep, *instances: str, incident_id: str | None = None) -> tuple[local.Execution, str]:
    incident_id = incident_id or f"IR-{uuid.uuid4().hex[:8]}"
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "issue 13",
                                    "instances": list(instances), "incidentId": incident_id}}, dep)
    return run, incident_id


def isolation(run, instance_id: str) -> dict:
    return instance_item(run, instance_id)["isolation"]


def two_subnets(dep) -> dict:
    net = w.vpc(dep, next(_octets))
    octet = dep.client("ec2").describe_vpcs(VpcIds=[net["vpcId"]])["Vpcs"][0]["CidrBlock"].split(".")[1]
    dep.client("ec2").create_subnet(VpcId=net["vpcId"], CidrBlock=f"10.{octet}.2.0/24")
    return net


def quarantine_of(dep, vpc_id: str) -> str:
    return w.responder_groups(dep, vpc_id)[QUARANTINE]["GroupId"]


def test_squatted_name_and_groups_not_yet_visible_still_isolate(dep):
    net = w.vpc(dep, next(_octets))
    ec2 = dep.client("ec2")
    squatter = ec2.create_security_group(GroupName=GROUP_NAMES[QUARANTINE], Description="someone else's",
                                         VpcId=net["vpcId"])["GroupId"]
    instance_id = w.instance(dep, net)
    gaps_ec2.set_new_group_lag(2)
    run, _ = manual(dep, instance_id)
    result = isolation(run, instance_id)
    assert result["status"] == "isolated", result.get("message")
    assert not [e for e in result["entries"] if e["status"] == "failed"]
    quarantine = quarantine_of(dep, net["vpcId"])
    assert quarantine != squatter
    assert list(w.interface_groups(dep, instance_id).values()) == [[quarantine]]


def test_spot_instance_is_isolated_without_termination_protection(dep):
    net = w.vpc(dep, next(_octets))
    instance_id = dep.client("ec2").run_instances(
        ImageId=w.image(dep), MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=net["subnetId"],
        SecurityGroupIds=[net["groupId"]], InstanceMarketOptions={"MarketType": "spot"})["Instances"][0]["InstanceId"]
    run, _ = manual(dep, instance_id)
    result = isolation(run, instance_id)
    assert result["status"] == "isolated", result.get("message")
    assert result["steps"]["termination_protection"] == "skipped"
    state = w.instance_state(dep, instance_id)
    assert state["termination"] is False and state["tags"]["ir:quarantine"] == "isolated"
    assert list(state["interfaces"].values()) == [[quarantine_of(dep, net["vpcId"])]]


def test_pending_auto_scaling_instance_is_detached_once_in_service(dep):
    net = w.vpc(dep, next(_octets))
    instance_id = w.in_auto_scaling_group(dep, net, f"wf-pending-{net['vpcId'][-6:]}")
    gaps_autoscaling.set_lifecycle(instance_id, "Pending:Wait", "InService")
    run, _ = manual(dep, instance_id)
    result = isolation(run, instance_id)
    assert result["status"] == "isolated", result.get("message")
    assert result["steps"]["auto_scaling"] == "done"
    assert w.instance_state(dep, instance_id)["asg"] == []


def test_warm_pool_instance_is_recorded_not_detached_and_the_rest_stands(dep):
    net = w.vpc(dep, next(_octets))
    name = f"wf-warm-{net['vpcId'][-6:]}"
    instance_id = w.in_auto_scaling_group(dep, net, name)
    gaps_autoscaling.set_lifecycle(instance_id, "Warmed:Stopped")
    run, incident_id = manual(dep, instance_id)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    result = isolation(run, instance_id)
    assert result["error"] == "NotDetachable" and "Warmed:Stopped" in result["message"]
    assert summary(run)["outcome"] == "partially_contained"
    state = w.instance_state(dep, instance_id)
    assert [a["AutoScalingGroupName"] for a in state["asg"]] == [name]
    assert list(state["interfaces"].values()) == [[quarantine_of(dep, net["vpcId"])]]
    assert record(dep, incident_id)["outcome"] == "partially_contained"


def test_full_network_acl_is_recorded_and_notified_and_the_security_groups_stand(dep):
    net = two_subnets(dep)
    ec2 = dep.client("ec2")
    acl_id = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpcId"]]}])["NetworkAcls"][0][
        "NetworkAclId"]
    gaps_ec2.set_acl_entry_limit(1)  # the default allow rule already uses the only one
    instance_id = w.instance(dep, net)
    run, incident_id = manual(dep, instance_id)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    result = isolation(run, instance_id)
    assert result["steps"]["network_acl"] == "failed"
    assert any(e.get("error") == "NetworkAclFull" for e in result["entries"])
    assert {f["error"] for f in summary(run)["failures"]} >= {"NetworkAclEntryLimitExceeded"}
    entries = ec2.describe_network_acls(NetworkAclIds=[acl_id])["NetworkAcls"][0]["Entries"]
    assert not [e for e in entries if e["RuleAction"] == "deny" and e["RuleNumber"] != 32767]
    assert list(w.interface_groups(dep, instance_id).values()) == [[quarantine_of(dep, net["vpcId"])]]
    assert record(dep, incident_id)["outcome"] == "partially_contained"


def test_acl_entries_and_tracking_timeouts_are_in_place_after_an_execution(dep):
    net = two_subnets(dep)
    instance_id = w.instance(dep, net)
    ip = w.describe(dep, instance_id)["PrivateIpAddress"]
    run, _ = manual(dep, instance_id)
    result = isolation(run, instance_id)
    assert result["status"] == "isolated", result.get("message")
    entries = dep.client("ec2").describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [net["vpcId"]]}])[
        "NetworkAcls"][0]["Entries"]
    assert {(e["RuleNumber"], e["Egress"]) for e in entries if e.get("CidrBlock") == f"{ip}/32"} == {
        (1, False), (1, True)}
    assert {(e["ruleNumber"], e["direction"]) for e in result["networkAclEntries"]} == {(1, "inbound"), (1, "outbound")}
    nic = w.describe(dep, instance_id)["NetworkInterfaces"][0]
    assert nic["ConnectionTrackingConfiguration"] == {"TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60,
                                                      "UdpTimeout": 30}


def test_ip_target_registered_from_a_peered_vpc_is_deregistered(dep):
    net, peer = w.vpc(dep, next(_octets)), w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    ip = w.describe(dep, instance_id)["PrivateIpAddress"]
    elbv2 = dep.client("elbv2")
    tg = elbv2.create_target_group(Name=f"wf-peer-{peer['vpcId'][-6:]}", Protocol="TCP", Port=443,
                                   VpcId=peer["vpcId"], TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": ip, "Port": 443, "AvailabilityZone": "all"}])
    run, _ = manual(dep, instance_id)
    assert isolation(run, instance_id)["status"] == "isolated"
    assert elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"] == []


def test_a_second_incident_keeps_the_first_named_and_reports_already_isolated(dep):
    net = w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    first, first_id = manual(dep, instance_id)
    assert isolation(first, instance_id)["status"] == "isolated"
    second, second_id = manual(dep, instance_id)
    result = isolation(second, instance_id)
    assert result["status"] == "already_isolated", result.get("message")
    tags = w.instance_state(dep, instance_id)["tags"]
    assert (tags["ir:incident"], tags["ir:incidents"], tags["ir:quarantine"]) == (first_id, second_id, "isolated")
