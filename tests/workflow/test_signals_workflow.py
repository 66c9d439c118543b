"""Every signal the seeds name, through the shipped state machine (issue 14 item 1): the AWS guide appendix's
Trusted Advisor "Exposed Access Keys" event, AWS Health AWS_RISK_CREDENTIALS_EXPOSED, an S3 finding, and a GuardDuty
attack sequence with three instances (one of them found only by reading its Auto Scaling group) and a key. Every
assertion on containment reads the AWS state back through boto3; every second run changes nothing."""
from __future__ import annotations

import copy
import time
import uuid
from datetime import datetime, timezone

import pytest

from demo.world_instance import build
from responder.aws.ec2 import QUARANTINE
from state_machines import local
from tests.conftest import load_example
from tests.worlds.deployment import deployment
from tests.worlds.isolation import interface_groups, responder_groups
from tests.worlds.operations import record
from tests.worlds.workflow import backdate_cloudtrail, iam_state

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
QUARANTINE_POLICY = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def new_user(dep, name: str | None = None, keys: int = 2) -> tuple[str, list[str]]:
    iam = dep.client("iam")
    name = name or f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    return name, [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def ta_event(detail: dict) -> dict:
    """Trusted Advisor's event as EventBridge delivers it in us-east-1 (the member account's), `detail` inside."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Trusted Advisor Check Item Refresh Notification",
            "source": "aws.trustedadvisor", "account": MEMBER, "time": "2024-06-02T01:58:00Z", "region": "us-east-1",
            "resources": [], "detail": detail}


def seed_detail(*, user: str | None = None, key: str | None = None) -> dict:
    detail = load_example("trustedadvisor-exposed-keys-detail.json")  # the appendix's, verbatim
    item = detail["check-item-detail"]
    item["Case ID"] = str(uuid.uuid4()) if user or key else item["Case ID"]
    item["User Name (IAM or Root)"] = user or item["User Name (IAM or Root)"]
    item["Access Key ID"] = key or item["Access Key ID"]
    return detail


def assert_quarantined(dep, user: str, cutoff: str) -> None:
    state = iam_state(dep.client("iam"))["users"][user]
    assert state["attached"] == [QUARANTINE_POLICY]
    assert {status for _, status in state["keys"]} == {"Inactive"}
    condition = state["inline"]["AWSRevokeOlderSessions"]["Statement"][0]["Condition"]
    assert condition["DateLessThan"]["aws:TokenIssueTime"] == cutoff


# -- Trusted Advisor -----------------------------------------------------------------------------------------------
def test_the_seed_event_verbatim_finds_no_such_key_here_and_changes_nothing(dep):
    new_user(dep, "jane-roe-test")  # the appendix's user exists, but its key AKIAIOSFODNN7EXAMPLE is not hers
    before = iam_state(dep.client("iam"))
    ev = ta_event(load_example("trustedadvisor-exposed-keys-detail.json"))
    run = local.deliver(ev, dep)
    assert run is not None and run.status == "SUCCEEDED", run.cause
    assert run.output["incidentId"] == "ta-02648f3b-e18f-4019-8d68-ce25efe080ff"
    assert run.output["outcome"] == "not_found"  # IAM names no owner for that key in this account
    assert iam_state(dep.client("iam")) == before


def test_the_seed_event_quarantines_that_user_and_deactivates_that_key(dep):
    user, keys = new_user(dep)
    ev = ta_event(seed_detail(user=user, key=keys[0]))
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained" and run.output["region"] == REGION  # acted from the responder's
    assert_quarantined(dep, user, run.output["cutoff"])
    item = record(dep, run.output["incidentId"])
    assert item["origin"] == "trusted_advisor" and item["signal"]["eventRegion"] == "us-east-1"

    after = iam_state(dep.client("iam"))
    again = local.deliver(ev, dep)  # Trusted Advisor refreshes the check: the same case
    assert again.output["outcome"] == "duplicate" and iam_state(dep.client("iam")) == after
    pasted = local.execute(dict(ev["detail"], accountId=MEMBER), dep)  # the detail pasted in the console
    assert pasted.output["incidentId"] == run.output["incidentId"] and pasted.output["outcome"] == "duplicate"
    assert iam_state(dep.client("iam")) == after


def test_a_user_name_that_names_someone_else_leads_to_the_keys_real_owner(dep):
    owner, keys = new_user(dep)
    bystander, _ = new_user(dep)
    run = local.deliver(ta_event(seed_detail(user=bystander, key=keys[1])), dep)
    assert run.output["outcome"] == "contained", run.output
    assert_quarantined(dep, owner, run.output["cutoff"])
    assert iam_state(dep.client("iam"))["users"][bystander]["attached"] == []


@pytest.mark.parametrize("field, value", [
    ("User Name (IAM or Root)", "victim\n"), ("User Name (IAM or Root)", "vict\u0456m"),
    ("Access Key ID", "AKIA\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660XY"),
])
def test_a_shaped_field_fails_the_execution_naming_it_and_changes_nothing(dep, field, value):
    user, keys = new_user(dep)
    detail = seed_detail(user=user, key=keys[0])
    detail["check-item-detail"][field] = value.replace("victim", user).replace("vict\u0456m", user[:-1] + "\u0456")
    before = iam_state(dep.client("iam"))
    run = local.deliver(ta_event(detail), dep)
    assert run.status == "FAILED" and run.error == "InvalidInput" and field in run.cause
    assert iam_state(dep.client("iam")) == before


def test_a_resolved_item_or_another_check_never_starts_an_execution(dep):
    resolved = seed_detail(user="someone", key="AKIAIOSFODNN7EXAMPLE")
    resolved["status"] = "OK"
    other = dict(seed_detail(user="someone", key="AKIAIOSFODNN7EXAMPLE"), **{"check-name": "IAM Use"})
    assert local.deliver(ta_event(resolved), dep) is None and local.deliver(ta_event(other), dep) is None


# -- AWS Health ----------------------------------------------------------------------------------------------------
def health_event(key: str) -> dict:
    ev = load_example("health-credentials-exposed.json")
    ev["id"] = str(uuid.uuid4())
    ev["detail"]["eventArn"] = ev["detail"]["eventArn"].rsplit("_", 1)[0] + "_" + uuid.uuid4().hex[:12]
    ev["detail"]["affectedEntities"] = [{"entityValue": key}]
    return ev


def test_health_credentials_exposed_quarantines_the_keys_owner(dep):
    user, keys = new_user(dep)
    ev = health_event(keys[0])
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained" and run.output["origin"] == "health"
    assert_quarantined(dep, user, run.output["cutoff"])
    after = iam_state(dep.client("iam"))
    backup = copy.deepcopy(ev)  # the same event delivered in the backup Region (us-west-2)
    backup["region"] = "us-west-2"
    assert local.deliver(backup, dep).output["outcome"] == "duplicate"
    assert local.execute(ev["detail"], dep).output["outcome"] == "duplicate"  # pasted bare: affectedAccount
    assert iam_state(dep.client("iam")) == after


# -- S3 findings ---------------------------------------------------------------------------------------------------
def s3_event(user: str, key: str) -> dict:
    ev = load_example("guardduty-s3.json")
    finding = uuid.uuid4().hex
    ev["detail"]["id"], ev["detail"]["arn"] = finding, ev["detail"]["arn"].rsplit("/", 1)[0] + "/" + finding
    details = ev["detail"]["resource"]["accessKeyDetails"]
    details["userName"], details["accessKeyId"] = user, key
    details["principalId"] = ""
    return ev


def test_an_s3_finding_contains_its_actor_and_records_the_bucket(dep):
    user, keys = new_user(dep)
    ev = s3_event(user, keys[0])
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    assert_quarantined(dep, user, run.output["cutoff"])
    item = record(dep, run.output["incidentId"])
    assert item["signal"]["buckets"] == [{"name": "example-payroll-exports", "arn": "arn:aws:s3:::example-payroll-exports"}]
    after = iam_state(dep.client("iam"))
    again = copy.deepcopy(ev)
    again["detail"]["service"]["count"] += 1
    assert local.deliver(again, dep).output["outcome"] == "duplicate" and iam_state(dep.client("iam")) == after


def test_an_s3_finding_on_a_protected_principal_changes_nothing(dep):
    user, keys = new_user(dep)
    dep.client("iam").tag_user(UserName=user, Tags=[{"Key": "ir:protected", "Value": "true"}])
    assert backdate_cloudtrail("TagUser", user, days=30) == 1  # an administrator's tag of last month, not the attacker's
    before = iam_state(dep.client("iam"))["users"][user]
    run = local.deliver(s3_event(user, keys[0]), dep)
    assert run.output["outcome"] == "protected", run.output
    assert iam_state(dep.client("iam"))["users"][user] == before


# -- attack sequences ----------------------------------------------------------------------------------------------
def plain_instance(dep, world: dict) -> str:
    ec2 = dep.client("ec2")
    return ec2.run_instances(ImageId=world["imageId"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
                             SubnetId=world["subnetIds"][1], SecurityGroupIds=[world["securityGroupId"]])[
        "Instances"][0]["InstanceId"]


def group_instances(dep, group: str) -> list[str]:
    (found,) = dep.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"]
    return sorted(i["InstanceId"] for i in found["Instances"])


def test_an_attack_sequence_with_three_instances_and_a_key(dep):
    world = build(dep)  # one instance in an Auto Scaling group, which launched a second one
    launched = [i for i in group_instances(dep, world["autoScalingGroup"]) if i != world["instanceId"]]
    assert len(launched) == 1
    standalone, decoy = plain_instance(dep, world), plain_instance(dep, world)
    user, keys = new_user(dep)
    ev = load_example("guardduty-attack-sequence.json")
    finding = uuid.uuid4().hex
    ev["detail"]["id"] = finding
    # The last activity: a whole second after the world's instances were launched, and a whole second before the
    # replacements isolation makes the group launch (LaunchTime has second precision): in AWS minutes lie between.
    time.sleep(1.05)
    ev["detail"]["service"]["eventLastSeen"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    time.sleep(1.05)
    sequence = ev["detail"]["service"]["detection"]["sequence"]
    resources = sequence["resources"]
    for resource in resources:
        resource["accountId"] = MEMBER
    ev["account"] = ev["detail"]["accountId"] = MEMBER
    resources[0]["uid"], resources[1]["uid"] = world["instanceId"], standalone
    del resources[2]  # the third instance is found only by reading the group
    key = next(r for r in resources if r["resourceType"] == "ACCESS_KEY")
    key["uid"], key["name"] = keys[0], user
    key["data"]["accessKey"].update(userName=user, principalId="")
    group = next(r for r in resources if r["resourceType"] == "AUTOSCALING_AUTO_SCALING_GROUP")
    group["name"] = world["autoScalingGroup"]
    group["uid"] = group["uid"].rsplit("/", 1)[0] + "/" + world["autoScalingGroup"]
    group["data"]["autoscalingAutoScalingGroup"]["ec2InstanceUids"] = [decoy]  # the finding's strings: not used
    sequence["actors"][0]["user"].update(name=user, credentialUid=keys[0], uid="",
                                         account={"uid": MEMBER})

    run = local.deliver(ev, dep)
    assert run is not None and run.status == "SUCCEEDED", run.cause
    isolated = sorted(i["instanceId"] for i in run.output["instances"])
    assert isolated == sorted([world["instanceId"], standalone, *launched])
    assert run.output["signal"]["groupInstances"] == {world["autoScalingGroup"]: 2}
    quarantine = responder_groups(dep, world["vpcId"])[QUARANTINE]["GroupId"]
    for instance_id in isolated:
        assert list(interface_groups(dep, instance_id).values()) == [[quarantine]], instance_id
    assert quarantine not in [g for gs in interface_groups(dep, decoy).values() for g in gs]
    assert_quarantined(dep, user, run.output["cutoff"])
    assert [(t["name"], t["status"]) for t in run.output["identities"]] == [(user, "contained")]

    after = ({i: interface_groups(dep, i) for i in [*isolated, decoy]}, iam_state(dep.client("iam")))
    again = copy.deepcopy(ev)
    again["detail"]["service"]["count"] += 1
    # isolation detached the group's two instances: the group launched replacements, which are not the sequence's
    assert len(set(group_instances(dep, world["autoScalingGroup"])) - set(isolated)) == 2
    rerun = local.deliver(again, dep)
    assert rerun.output["outcome"] == "duplicate", rerun.output
    assert ({i: interface_groups(dep, i) for i in [*isolated, decoy]}, iam_state(dep.client("iam"))) == after


def test_an_actor_named_only_in_the_sequence_is_contained(dep):
    user, keys = new_user(dep)
    ev = load_example("guardduty-attack-sequence.json")
    ev["detail"]["id"] = uuid.uuid4().hex
    ev["account"] = ev["detail"]["accountId"] = MEMBER
    sequence = ev["detail"]["service"]["detection"]["sequence"]
    sequence["resources"] = [r for r in sequence["resources"] if r["resourceType"] == "S3_BUCKET"]
    sequence["actors"][0]["user"].update(name=user, credentialUid=keys[1], uid="", account={"uid": MEMBER})
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained" and not run.output["instances"]
    assert_quarantined(dep, user, run.output["cutoff"])
