"""Isolation where real AWS differs from moto or the attacker shapes the world (issue 13), against moto with the
local runtime's gaps (state_machines/gaps_ec2.py, gaps_autoscaling.py): eventual consistency of new groups, Spot,
every Auto Scaling lifecycle state, network ACL deny entries (free low numbers, a full ACL, no room, second runs),
connection-tracking timeouts, ip targets in a peered VPC, a squatted group name, a group tagged like ours by
someone else, and a second incident. AWS state is read back through boto3 each time."""
from __future__ import annotations

import pytest

from responder.aws.ec2 import GROUP_NAMES, QUARANTINE, UNTRACK
from responder.isolation import isolate, later_incidents
from state_machines import gaps_autoscaling, gaps_ec2, local
from tests.worlds import isolation as w
from tests.worlds.deployment import deployment

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
MIN_TRACKING = {"TcpEstablishedTimeout": 60, "UdpStreamTimeout": 60, "UdpTimeout": 30}


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


@pytest.fixture(autouse=True)
def switches_off():
    yield
    gaps_ec2.reset()
    gaps_autoscaling.reset()


@pytest.fixture
def settle_sleeps(monkeypatch) -> list[float]:
    """The back-off sleeps of the adapters' in-call retries, recorded instead of slept."""
    from responder.aws import retry

    slept: list[float] = []
    monkeypatch.setattr(retry, "time", type("FakeTime", (), {"sleep": staticmethod(slept.append)}))
    return slept


_octets = iter(range(100, 250))


def net_with_neighbour_subnet(dep, *, neighbour_cidr: str | None = None) -> dict:
    """A VPC whose default ACL serves the instance's subnet and a second one (where a NAT gateway would sit)."""
    net = w.vpc(dep, next(_octets))
    vpc_cidr = dep.client("ec2").describe_vpcs(VpcIds=[net["vpcId"]])["Vpcs"][0]["CidrBlock"]
    octet = vpc_cidr.split(".")[1]
    net["natSubnetId"] = dep.client("ec2").create_subnet(
        VpcId=net["vpcId"], CidrBlock=neighbour_cidr or f"10.{octet}.2.0/24")["Subnet"]["SubnetId"]
    return net


def run(dep, instance_id, incident=None, *, settings=None, sleeps=None, time_left=None):
    slept = sleeps if sleeps is not None else []
    return isolate(instance_id, incident or w.incident(dep), adapters_for=w.adapters_for(dep),
                   settings=settings or w.settings_of(dep), sleep=slept.append, time_left=time_left)


def default_acl(dep, vpc_id: str) -> dict:
    return dep.client("ec2").describe_network_acls(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]


def denies(acl: dict) -> set[tuple]:
    return {(e["RuleNumber"], e["Egress"], e.get("CidrBlock") or e.get("Ipv6CidrBlock")) for e in acl["Entries"]
            if e["RuleAction"] == "deny" and e["RuleNumber"] != 32767}


def tracking(dep, instance_id: str) -> list[dict | None]:
    return [n.get("ConnectionTrackingConfiguration") for n in w.describe(dep, instance_id)["NetworkInterfaces"]]


# -- 1: eventual consistency of the groups this run creates --------------------------------------------------
def test_new_groups_not_yet_visible_are_waited_for_not_failed(dep, settle_sleeps):
    net = w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    gaps_ec2.set_new_group_lag(3)  # each new group: InvalidGroup.NotFound to its first 3 calls
    sleeps = settle_sleeps
    result = run(dep, instance_id)
    assert result["status"] == "isolated", result.get("message")
    assert not [e for e in result["entries"] if e["status"] == "failed"]
    assert sleeps and set(sleeps) <= {0.25, 0.5, 1.0, 2.0, 4.0, 8.0}
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]["GroupId"]
    assert list(w.interface_groups(dep, instance_id).values()) == [[quarantine]]


def test_a_group_that_never_appears_fails_its_step_after_the_back_off(dep, settle_sleeps):
    net = w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    gaps_ec2.set_new_group_lag(100)
    sleeps = settle_sleeps
    result = run(dep, instance_id)
    assert result["status"] == "failed" and result["error"] == "InvalidGroup.NotFound"
    assert result["steps"]["security_groups"] == "failed"
    assert sum(sleeps) == pytest.approx(15.75)  # one back-off (the first call that names the new group)
    assert list(w.interface_groups(dep, instance_id).values()) == [[net["groupId"]]]  # never half-moved


def test_not_found_for_a_group_this_run_did_not_make_is_not_retried(dep, settle_sleeps):
    net = w.vpc(dep, next(_octets))
    first = w.instance(dep, net)
    assert run(dep, first)["status"] == "isolated"
    gaps_ec2.set_new_group_lag(5)  # no new group: nothing lags, nothing is slept
    assert run(dep, w.instance(dep, net))["status"] == "isolated"
    assert settle_sleeps == []


# -- 3: Spot ---------------------------------------------------------------------------------------------------
def spot_instance(dep, net) -> str:
    return dep.client("ec2").run_instances(
        ImageId=w.image(dep), MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=net["subnetId"],
        SecurityGroupIds=[net["groupId"]], InstanceMarketOptions={"MarketType": "spot"})["Instances"][0]["InstanceId"]


def test_spot_instance_skips_termination_protection_with_the_reason_and_is_isolated(dep):
    net = w.vpc(dep, next(_octets))
    instance_id = spot_instance(dep, net)
    result = run(dep, instance_id)
    assert result["status"] == "isolated", result.get("message")
    assert result["steps"]["termination_protection"] == "skipped"
    skipped = next(e for e in result["entries"] if e["step"] == "termination_protection")
    assert "Spot" in skipped["detail"]
    state = w.instance_state(dep, instance_id)
    assert state["termination"] is False and state["shutdown"] == "stop"
    assert state["tags"]["ir:quarantine"] == "isolated"
    assert run(dep, instance_id)["status"] == "already_isolated"


# -- 4: Auto Scaling lifecycle states ---------------------------------------------------------------------------
def group_members(dep, name: str) -> list[str]:
    group = dep.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return [i["InstanceId"] for i in group[0]["Instances"]]


@pytest.fixture(scope="module")
def asg_net(dep):
    return w.vpc(dep, next(_octets))


@pytest.mark.parametrize("states", [
    ("Standby",), ("Pending", "InService"), ("Pending:Wait", "Pending:Wait", "Pending:Proceed", "InService"),
    ("EnteringStandby", "Standby"), ("ReplacingRootVolume", "InService")], ids=lambda s: "-".join(s))
def test_detachable_now_or_after_a_wait(dep, asg_net, states):
    name = f"asg-{len(states)}-{states[0].replace(':', '')}"
    instance_id = w.in_auto_scaling_group(dep, asg_net, name)
    gaps_autoscaling.set_lifecycle(instance_id, *states)
    sleeps: list[float] = []
    result = run(dep, instance_id, sleeps=sleeps)
    assert result["status"] == "isolated", result.get("message")
    assert result["steps"]["auto_scaling"] == "done"
    assert instance_id not in group_members(dep, name)
    waited = [e for e in result["entries"] if e["status"] == "waiting"]
    assert bool(waited) == (len(states) > 1) and len(sleeps) == len(states) - 1
    # the network isolation did not wait for the group
    order = [e["step"] for e in result["entries"]]
    assert order.index("network_isolation") < len(order) - order[::-1].index("auto_scaling") - 1 or len(states) == 1


@pytest.mark.parametrize("state", ["Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated", "Terminating:Retained"])
def test_a_state_auto_scaling_never_detaches_from_is_recorded_and_the_rest_stands(dep, asg_net, state):
    name = f"asg-stuck-{state.replace(':', '-')}"
    instance_id = w.in_auto_scaling_group(dep, asg_net, name)
    gaps_autoscaling.set_lifecycle(instance_id, state)
    result = run(dep, instance_id)
    assert result["status"] == "failed" and result["error"] == "NotDetachable"
    assert state in result["message"]
    assert {s for s, v in result["steps"].items() if v == "failed"} == {"auto_scaling"}
    state_now = w.instance_state(dep, instance_id)
    quarantine = w.responder_groups(dep, asg_net["vpcId"])[QUARANTINE]["GroupId"]
    assert list(state_now["interfaces"].values()) == [[quarantine]]
    assert state_now["tags"]["ir:quarantine"] == "incomplete"
    assert instance_id in group_members(dep, name)  # nothing pretended


def test_already_leaving_is_unchanged(dep, asg_net):
    instance_id = w.in_auto_scaling_group(dep, asg_net, "asg-leaving")
    gaps_autoscaling.set_lifecycle(instance_id, "Terminating:Wait")
    result = run(dep, instance_id)
    assert result["steps"]["auto_scaling"] == "unchanged" and result["status"] == "isolated"


def test_still_pending_at_the_end_of_the_budget_fails_with_the_state(dep, asg_net):
    instance_id = w.in_auto_scaling_group(dep, asg_net, "asg-hook")
    gaps_autoscaling.set_lifecycle(instance_id, "Pending:Wait")  # a launch hook that outlasts the task
    clock = {"left": 40.0}
    sleeps: list[float] = []

    def sleep(seconds):
        sleeps.append(seconds)
        clock["left"] -= seconds

    result = isolate(instance_id, w.incident(dep), adapters_for=w.adapters_for(dep), settings=w.settings_of(dep),
                     sleep=sleep, time_left=lambda: clock["left"])
    assert result["status"] == "failed" and result["error"] == "AutoScalingStillPending"
    assert "Pending:Wait" in result["message"]
    assert sum(sleeps) <= 40 and len([e for e in result["entries"] if e["status"] == "waiting"]) == 1
    assert instance_id in group_members(dep, "asg-hook")
    quarantine = w.responder_groups(dep, asg_net["vpcId"])[QUARANTINE]["GroupId"]
    assert list(w.interface_groups(dep, instance_id).values()) == [[quarantine]]


def test_resource_contention_is_retried_inside_the_call(dep, asg_net, settle_sleeps):
    from tests.worlds.reliability import intercept

    instance_id = w.in_auto_scaling_group(dep, asg_net, "asg-busy")
    with _as_handler(), intercept("autoscaling:DetachInstances", code="ResourceContention", times=2):
        result = run(dep, instance_id)
    assert result["steps"]["auto_scaling"] == "done", result.get("message")
    assert settle_sleeps == [1.0, 2.0]
    assert instance_id not in group_members(dep, "asg-busy")
    assert [e["status"] for e in result["entries"] if e.get("api") == "autoscaling:DetachInstances"] == ["done"]


def test_resource_contention_that_lasts_is_transient_for_the_state_machine(dep, asg_net, settle_sleeps):
    from responder.errors import TransientAwsError
    from tests.worlds.reliability import intercept

    instance_id = w.in_auto_scaling_group(dep, asg_net, "asg-busier")
    with _as_handler(), intercept("autoscaling:DetachInstances", code="ResourceContention", times=10):
        with pytest.raises(TransientAwsError):
            run(dep, instance_id)


class _as_handler:
    """Make the test's own calls count as a handler's (tests.worlds.reliability.intercept only acts on those)."""

    def __enter__(self):
        self.outer, local._handler.function = getattr(local._handler, "function", None), "IsolateInstance"

    def __exit__(self, *exc):
        local._handler.function = self.outer


# -- 6: network ACL deny entries and connection tracking -------------------------------------------------------
def test_deny_entries_for_the_instance_in_the_acls_of_other_subnets_below_every_allow(dep):
    net = net_with_neighbour_subnet(dep)
    instance_id = w.instance(dep, net)
    ip = w.describe(dep, instance_id)["PrivateIpAddress"]
    result = run(dep, instance_id)
    assert result["status"] == "isolated", result.get("message")
    acl = default_acl(dep, net["vpcId"])
    assert denies(acl) == {(1, False, f"{ip}/32"), (1, True, f"{ip}/32")}  # below the default allow at 100
    assert result["networkAclEntries"] == [
        {"networkAclId": acl["NetworkAclId"], "ruleNumber": 1, "direction": "inbound", "cidr": f"{ip}/32"},
        {"networkAclId": acl["NetworkAclId"], "ruleNumber": 1, "direction": "outbound", "cidr": f"{ip}/32"}]
    assert tracking(dep, instance_id) == [MIN_TRACKING]
    # second run: found by exact CIDR and number, nothing added
    again = run(dep, instance_id)
    assert again["status"] == "already_isolated"
    assert again["steps"]["network_acl"] == "unchanged" and again["steps"]["connection_tracking"] == "unchanged"
    assert again["networkAclEntries"] == result["networkAclEntries"]
    assert denies(default_acl(dep, net["vpcId"])) == denies(acl)


def test_numbers_are_the_lowest_free_and_existing_rules_are_left_alone(dep):
    net = net_with_neighbour_subnet(dep)
    ec2 = dep.client("ec2")
    acl_id = default_acl(dep, net["vpcId"])["NetworkAclId"]
    for number in (1, 2, 4):  # the owner's own rules (deny some range) at low numbers
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=number, Protocol="6", RuleAction="deny",
                                     Egress=False, CidrBlock=f"192.0.2.{number}/32", PortRange={"From": 23, "To": 23})
    neighbour = w.instance(dep, net)
    run(dep, neighbour)
    neighbour_ip = w.describe(dep, neighbour)["PrivateIpAddress"]
    instance_id = w.instance(dep, net)
    ip = w.describe(dep, instance_id)["PrivateIpAddress"]
    before = {(e["RuleNumber"], e["Egress"]): e for e in default_acl(dep, net["vpcId"])["Entries"]}
    assert run(dep, instance_id)["status"] == "isolated"
    after = default_acl(dep, net["vpcId"])
    assert denies(after) - denies({"Entries": list(before.values())}) == {(5, False, f"{ip}/32"), (2, True, f"{ip}/32")}
    assert (3, False, f"{neighbour_ip}/32") in denies(after) and (1, True, f"{neighbour_ip}/32") in denies(after)
    kept = {(e["RuleNumber"], e["Egress"]): e for e in after["Entries"]}
    assert all(kept[k] == v for k, v in before.items())  # nothing of the owner's changed


def test_a_full_acl_is_recorded_and_the_security_group_isolation_stands(dep):
    net = net_with_neighbour_subnet(dep)
    ec2 = dep.client("ec2")
    acl_id = default_acl(dep, net["vpcId"])["NetworkAclId"]
    for number in range(110, 129):  # 19 rules of the owner's + the default allow at 100 = 20 inbound
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=number, Protocol="-1", RuleAction="allow",
                                     Egress=False, CidrBlock=f"198.51.100.{number}/32")
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id)
    assert result["status"] == "failed" and result["error"] == "NetworkAclEntryLimitExceeded"  # AWS's code first
    full = [e for e in result["entries"] if e.get("error") == "NetworkAclFull"]
    assert len(full) == 1 and "security-group isolation stands" in full[0]["message"]
    assert {s for s, v in result["steps"].items() if v == "failed"} == {"network_acl"}
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]["GroupId"]
    assert list(w.interface_groups(dep, instance_id).values()) == [[quarantine]]
    assert denies(default_acl(dep, net["vpcId"])) == set()  # the inbound entry was refused first: none written
    assert w.instance_state(dep, instance_id)["tags"]["ir:quarantine"] == "incomplete"


def test_no_free_number_below_the_first_allow_is_refused_not_written_out_of_order(dep):
    net = net_with_neighbour_subnet(dep)
    ec2 = dep.client("ec2")
    acl_id = default_acl(dep, net["vpcId"])["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=1, Protocol="-1", RuleAction="allow",
                                 Egress=True, CidrBlock="0.0.0.0/0")
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id)
    assert result["error"] == "NetworkAclNoRoom" and "outbound" in result["message"]
    assert denies(default_acl(dep, net["vpcId"])) == set()  # not even the inbound half: nothing claimed


def test_the_instance_alone_in_its_subnet_acl_gets_no_entry_it_could_not_use(dep):
    net = w.vpc(dep, next(_octets))  # one subnet: its ACL can never single the instance out
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id)
    assert result["status"] == "isolated"
    assert result["steps"]["network_acl"] == "skipped" and result["networkAclEntries"] == []
    assert denies(default_acl(dep, net["vpcId"])) == set()
    assert tracking(dep, instance_id) == [MIN_TRACKING]


def test_the_responders_subnet_keeps_reaching_the_instance(dep):
    net = net_with_neighbour_subnet(dep)
    vpc_cidr = dep.client("ec2").describe_vpcs(VpcIds=[net["vpcId"]])["Vpcs"][0]["CidrBlock"]
    bastion_cidr = vpc_cidr.replace(".0.0/16", ".2.0/24")  # the second subnet is the responders' own
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id, settings=w.settings_of(dep, isolation_cidrs=(bastion_cidr,)))
    assert result["steps"]["network_acl"] == "skipped"
    assert denies(default_acl(dep, net["vpcId"])) == set()


def test_switched_off_nothing_of_the_acls_or_tracking_is_touched(dep):
    net = net_with_neighbour_subnet(dep)
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id, settings=w.settings_of(dep, network_acl_isolation=False))
    assert result["status"] == "isolated"
    assert "network_acl" not in result["steps"] and "connection_tracking" not in result["steps"]
    assert denies(default_acl(dep, net["vpcId"])) == set() and tracking(dep, instance_id) == [None]


def test_dry_run_plans_the_entries_and_writes_none(dep):
    net = net_with_neighbour_subnet(dep)
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id, w.incident(dep, dry_run=True))
    planned = [e for e in result["entries"] if e.get("api") == "ec2:CreateNetworkAclEntry"]
    assert [(e["params"]["RuleNumber"], e["params"]["Egress"]) for e in planned] == [(1, False), (1, True)]
    assert denies(default_acl(dep, net["vpcId"])) == set() and tracking(dep, instance_id) == [None]


# -- 7: ip targets registered from a peered VPC ------------------------------------------------------------------
def test_an_ip_target_in_a_peered_vpcs_target_group_is_found_and_deregistered(dep):
    net = w.vpc(dep, next(_octets))
    peer = w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    ip = w.describe(dep, instance_id)["PrivateIpAddress"]
    elbv2 = dep.client("elbv2")
    remote = elbv2.create_target_group(Name=f"peer-ip-{peer['vpcId'][-6:]}", Protocol="TCP", Port=80,
                                       VpcId=peer["vpcId"], TargetType="ip")["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=remote["TargetGroupArn"],
                           Targets=[{"Id": ip, "Port": 80, "AvailabilityZone": "all"}])
    remote_by_id = elbv2.create_target_group(Name=f"peer-id-{peer['vpcId'][-6:]}", Protocol="TCP", Port=80,
                                             VpcId=peer["vpcId"], TargetType="instance")["TargetGroups"][0]
    result = run(dep, instance_id)
    assert result["status"] == "isolated", result.get("message")
    left = elbv2.describe_target_health(TargetGroupArn=remote["TargetGroupArn"])["TargetHealthDescriptions"]
    assert ip not in [d["Target"]["Id"] for d in left]
    deregistered = [e for e in result["entries"] if e.get("api") == "elasticloadbalancing:DeregisterTargets"]
    assert [e["target"] for e in deregistered] == [remote["TargetGroupArn"]]
    looked_at = {e["target"] for e in result["entries"] if e["step"] == "target_groups"}
    assert remote_by_id["TargetGroupArn"] not in looked_at  # an instance target must be in its group's VPC


def test_the_time_budget_stops_the_look_up_and_says_what_was_not_checked(dep):
    net = w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    elbv2 = dep.client("elbv2")
    for n in range(3):
        elbv2.create_target_group(Name=f"budget-{n}-{net['vpcId'][-6:]}", Protocol="HTTP", Port=80,
                                  VpcId=net["vpcId"], TargetType="ip")
    result = run(dep, instance_id, time_left=lambda: 10.0)  # below the reserve: nothing is looked at
    assert result["status"] == "failed" and result["error"] == "TargetGroupsUnchecked"
    assert "a re-run checks them" in result["message"]
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]["GroupId"]
    assert list(w.interface_groups(dep, instance_id).values()) == [[quarantine]]


# -- 9: squatting, and a group tagged like ours ----------------------------------------------------------------
def test_a_squatted_group_name_never_blocks_isolation(dep):
    net = w.vpc(dep, next(_octets))
    ec2 = dep.client("ec2")
    squatters = {ec2.create_security_group(GroupName=name, Description="not ours", VpcId=net["vpcId"])["GroupId"]
                 for name in GROUP_NAMES.values()}
    for group_id in squatters:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    instance_id = w.instance(dep, net)
    result = run(dep, instance_id)
    assert result["status"] == "isolated", result.get("message")
    ours = w.responder_groups(dep, net["vpcId"])
    assert {ours[QUARANTINE]["GroupId"], ours[UNTRACK]["GroupId"]}.isdisjoint(squatters)
    assert list(w.interface_groups(dep, instance_id).values()) == [[ours[QUARANTINE]["GroupId"]]]
    assert ours[QUARANTINE]["GroupName"].startswith("ir-quarantine-")


def test_a_group_tagged_like_ours_by_someone_else_is_brought_to_exactly_our_rules(dep):
    net = w.vpc(dep, next(_octets))
    ec2 = dep.client("ec2")
    planted = {}
    for purpose in (QUARANTINE, UNTRACK):
        planted[purpose] = ec2.create_security_group(
            GroupName=f"planted-{purpose}", Description="an attacker's", VpcId=net["vpcId"],
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": "ir:purpose", "Value": purpose}]}])["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=planted[purpose], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": net["groupId"]}]}])
    instance_id = w.instance(dep, net)
    settings = w.settings_of(dep, isolation_cidrs=("10.250.0.0/24",))
    assert run(dep, instance_id, settings=settings)["status"] == "isolated"
    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=list(planted.values()))["SecurityGroups"]}
    quarantine = groups[planted[QUARANTINE]]
    for key in ("IpPermissions", "IpPermissionsEgress"):
        assert quarantine[key] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.250.0.0/24"}],
                                    "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}], key
    untrack = groups[planted[UNTRACK]]
    assert not [p for p in untrack["IpPermissions"] if p.get("UserIdGroupPairs") or p.get("FromPort") == 22]


# -- 12: a second incident ---------------------------------------------------------------------------------------
def test_a_second_incident_keeps_the_first_named_and_is_already_isolated(dep):
    net = w.vpc(dep, next(_octets))
    instance_id = w.instance(dep, net)
    first, second, third = (w.incident(dep, incident_id=f"IR-{n}") for n in ("first", "second", "third"))
    assert run(dep, instance_id, first)["status"] == "isolated"
    result = run(dep, instance_id, second)
    assert result["status"] == "already_isolated"
    tags = w.instance_state(dep, instance_id)["tags"]
    assert tags["ir:incident"] == "IR-first" and tags["ir:incidents"] == "IR-second"
    assert run(dep, instance_id, third)["status"] == "already_isolated"
    assert run(dep, instance_id, second)["status"] == "already_isolated"  # a replay adds nothing
    tags = w.instance_state(dep, instance_id)["tags"]
    assert tags["ir:incident"] == "IR-first" and tags["ir:incidents"] == "IR-second IR-third"


def test_later_incidents_stay_within_the_tag_value_limit():
    assert later_incidents({}, "a") is None
    assert later_incidents({"ir:incident": "a"}, "a") is None
    assert later_incidents({"ir:incident": "a"}, "b") == "b"
    full = " ".join(f"gd-{n:061d}" for n in range(4))  # 4 x 64 + 3 = 259 > 256: only 3 fit
    three = " ".join(full.split()[:3])
    assert later_incidents({"ir:incident": "a", "ir:incidents": three}, "gd-x" * 16) == ""
    assert len(later_incidents({"ir:incident": "a", "ir:incidents": "b"}, "c" * 254)) == 256
