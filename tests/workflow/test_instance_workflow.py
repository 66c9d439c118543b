"""The instance branch of the shipped state machine, executed locally (issue 3): an Instance finding through the
rule, an AccessKey finding that carries instanceDetails (both branches), a manual request, a dry run, and a step
failing half way. Assertions are on the isolation result and on AWS state; the execution status is asserted only
where evidence collection cannot change it."""
from __future__ import annotations

import json
import uuid

import pytest

from demo.world_instance import build
from demo.world_instance import state as demo_state
from responder.aws.ec2 import QUARANTINE
from state_machines import local
from tests.worlds import isolation as w
from tests.worlds.deployment import deployment
from tests.worlds.evidence import instance_detail
from tests.worlds.workflow import event

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
DENY_ALL = "ir-quarantine-deny-all"


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def instance_event(name: str, instance_id: str) -> dict:
    ev = event(name, account=MEMBER, region=REGION)
    ev["detail"]["resource"]["instanceDetails"]["instanceId"] = instance_id
    return ev


def summary(run) -> dict:
    """The Finalize task's output (the incident summary): there whether the execution succeeded or failed."""
    for ev in reversed(run.events):
        details = ev.get("stateExitedEventDetails") or {}
        if details.get("name") == "Finalize":
            return json.loads(details["output"])
    raise AssertionError(f"Finalize never ran: {run.status} {run.error} {run.cause}")


def item(run, instance_id: str) -> dict:
    return instance_detail(run, instance_id)


def isolation_calls(run) -> list[str]:
    """The calls the IsolateInstance task made (without the test's own polling of the execution)."""
    return [c["api"] for c in run.aws_calls
            if c["function"].endswith("IsolateInstance") and not c["api"].startswith("states:")]


def assert_isolated(dep, world: dict) -> None:
    state = w.instance_state(dep, world["instanceId"])
    quarantine = w.responder_groups(dep, world["vpcId"])[QUARANTINE]["GroupId"]
    assert list(state["interfaces"].values()) == [[quarantine]]
    assert state["profile"].endswith(f":instance-profile/{DENY_ALL}")
    assert state["asg"] == [] and state["termination"] is True
    assert set(state["deleteOnTermination"].values()) == {False}
    assert world["instanceId"] not in [t[0] for t in state["targetGroups"][f"{world['name']}-tg"]]
    assert world["instanceId"] not in state["classic"][world["classicLoadBalancer"]]
    assert state["tags"]["Environment"] == "production" and state["tags"]["ir:quarantine"] == "isolated"


def test_instance_finding_isolates_the_instance(dep):
    world = build(dep)
    before = demo_state(dep, world)
    assert before["inAutoScalingGroup"] and before["inClassicLoadBalancer"] and before["inTargetGroup"]
    ev = instance_event("guardduty-instance.json", world["instanceId"])
    run = local.deliver(ev, dep)
    assert run is not None
    after = demo_state(dep, world)  # what `make demo` shows
    assert [[n.rsplit("-", 1)[0] for n in names] for names in after["interfaces"].values()] == [["ir-quarantine"]]
    assert after["instanceProfile"] == DENY_ALL and after["groupDesiredCapacity"] == before["groupDesiredCapacity"]
    assert not (after["inAutoScalingGroup"] or after["inClassicLoadBalancer"] or after["inTargetGroup"])
    assert "IsolateInstance" in run.states and "ContainIdentities" not in run.states
    isolation = item(run, world["instanceId"])["isolation"]
    assert isolation["status"] == "isolated", isolation.get("message")
    assert isolation["steps"]["network_isolation"] == "done" and isolation["steps"]["instance_profile"] == "done"
    assert_isolated(dep, world)
    incident_id = f"gd-{ev['detail']['id']}"
    assert w.instance_state(dep, world["instanceId"])["tags"]["ir:incident"] == incident_id
    assert isolation["metadata"]["evidence"]["uri"].endswith(
        f"/incidents/{incident_id}/instances/{world['instanceId']}/metadata.json")
    # the AWS calls of this isolation (first in the VPC: the two groups are created)
    calls = isolation_calls(run)
    assert calls.count("ec2:DescribeInstances") == 1
    assert calls.count("ec2:ModifyNetworkInterfaceAttribute") == 3  # two moves, then the tracking timeouts
    assert calls.count("dynamodb:UpdateItem") == 1  # the incident's live timeline (responder account)
    assert len([c for c in calls if not c.startswith(("sts:", "dynamodb:"))]) == 33, calls


def test_access_key_finding_with_instance_details_runs_both_branches(dep):
    world = build(dep)
    ev = instance_event("guardduty-instance-credentials.json", world["instanceId"])
    ev["detail"]["resource"]["accessKeyDetails"]["userName"] = world["roleName"]
    role_id = dep.client("iam").get_role(RoleName=world["roleName"])["Role"]["RoleId"]
    ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = f"{role_id}:{world['instanceId']}"
    run = local.execute(ev, dep)
    assert {"ContainIdentities", "IsolateInstance"} <= set(run.states)
    # the two branches race to put the same revoke policy on the profile's role: whichever comes second finds it
    assert [i["status"] for i in summary(run)["identities"]] in (["contained"], ["already_contained"])
    assert item(run, world["instanceId"])["isolation"]["status"] == "isolated"
    assert_isolated(dep, world)
    # both branches put the same AWSRevokeOlderSessions (the incident's cut-off) on the profile's role
    doc = dep.client("iam").get_role_policy(RoleName=world["roleName"], PolicyName="AWSRevokeOlderSessions")
    cutoff = doc["PolicyDocument"]["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert cutoff == summary(run)["cutoff"]


def test_manual_request_isolates_the_named_instances(dep):
    net = w.vpc(dep, 60)
    first, second = w.instance(dep, net), w.instance(dep, net)
    incident_id = f"IR-{uuid.uuid4().hex[:8]}"
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "beaconing to a C2 domain",
                                    "instances": [first, second], "incidentId": incident_id}}, dep)
    assert [item(run, i)["isolation"]["status"] for i in (first, second)] == ["isolated", "isolated"]
    quarantine = w.responder_groups(dep, net["vpcId"])[QUARANTINE]["GroupId"]
    for instance_id in (first, second):
        state = w.instance_state(dep, instance_id)
        assert list(state["interfaces"].values()) == [[quarantine]]
        assert state["tags"]["ir:incident"] == incident_id


def test_manual_dry_run_plans_the_isolation_and_changes_nothing(dep):
    net = w.vpc(dep, 61)
    instance_id = w.instance(dep, net, profile_name=w.profile(dep)["name"])
    before = w.instance_state(dep, instance_id)
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "what would happen?",
                                    "instances": [instance_id], "incidentId": f"IR-{uuid.uuid4().hex[:8]}",
                                    "dryRun": True}}, dep)
    assert item(run, instance_id)["isolation"]["status"] == "planned"
    assert w.instance_state(dep, instance_id) == before
    planned = {e.get("api") for e in summary(run)["plan"]}
    assert {"ec2:CreateSecurityGroup", "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:ReplaceIamInstanceProfileAssociation", "ec2:CreateTags"} <= planned


def test_terminated_instance_is_a_clean_not_found(dep):
    net = w.vpc(dep, 62)
    instance_id = w.instance(dep, net)
    dep.client("ec2").terminate_instances(InstanceIds=[instance_id])
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "already gone?",
                                    "instances": [instance_id], "incidentId": f"IR-{uuid.uuid4().hex[:8]}"}}, dep)
    assert item(run, instance_id)["isolation"]["status"] == "not_found"
    assert run.status == "SUCCEEDED" and summary(run)["outcome"] == "not_found"  # never "contained" (issue 10)
    assert w.responder_groups(dep, net["vpcId"]) == {}


@pytest.fixture
def deny_all_profile_missing(dep):
    """The member account's deny-all profile is gone (a member stack older than the responder)."""
    iam = dep.client("iam")
    role = iam.get_instance_profile(InstanceProfileName=DENY_ALL)["InstanceProfile"]["Roles"][0]["RoleName"]
    iam.remove_role_from_instance_profile(InstanceProfileName=DENY_ALL, RoleName=role)
    iam.delete_instance_profile(InstanceProfileName=DENY_ALL)
    yield
    iam.create_instance_profile(InstanceProfileName=DENY_ALL)
    iam.add_role_to_instance_profile(InstanceProfileName=DENY_ALL, RoleName=role)


def test_a_step_failing_half_way_keeps_the_isolation_and_fails_the_execution(dep, deny_all_profile_missing):
    world = build(dep)
    run = local.execute(instance_event("guardduty-instance.json", world["instanceId"]), dep)
    assert run.status == "FAILED"
    assert run.error == "ContainmentIncomplete"
    assert "instance_profile" in run.cause and "NoSuchEntity" in run.cause
    isolation = item(run, world["instanceId"])["isolation"]
    assert isolation["status"] == "failed" and isolation["error"] == "NoSuchEntity"
    assert [s for s, status in isolation["steps"].items() if status == "failed"] == ["instance_profile"]
    assert summary(run)["outcome"] == "partially_contained"
    # nothing was undone: the network isolation, the revoked sessions, the detach and the deregistration stand
    state = w.instance_state(dep, world["instanceId"])
    assert list(state["interfaces"].values()) == [[w.responder_groups(dep, world["vpcId"])[QUARANTINE]["GroupId"]]]
    assert state["profile"] == world["instanceProfileArn"]
    assert "AWSRevokeOlderSessions" in state["rolePolicies"][world["roleName"]]
    assert state["asg"] == [] and state["tags"]["ir:quarantine"] == "incomplete"
