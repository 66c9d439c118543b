"""The workflow's state is bounded by design (docs/ARCHITECTURE.md, "Payload bound"): the largest request Triage
accepts and an event at EventBridge's size limit end with a record, a manifest and one notification, the largest
state payload in the execution history far below Step Functions' 256 KiB, and the incident record far below
DynamoDB's 400 KB item limit. (Before the redesign, 16 instances or a 250 KB finding failed the execution with
States.DataLimitExceeded after containment: no record, no manifest, no notification.)"""
from __future__ import annotations

import json
import uuid

import pytest

from responder.triage import MAX_TARGETS
from state_machines import gaps_ebs, local
from tests.worlds.deployment import deployment
from tests.worlds.evidence import AMI
from tests.worlds.operations import Inbox, evidence_object, record
from tests.worlds.workflow import access_key_event

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
LIMIT = 64 * 1024  # "far below" Step Functions' 256 KiB
VOLUMES = 4  # per instance: the root volume and three data volumes
# Instances run here: every instance adds one bounded summary to the state, so the bound for the 50 Triage accepts
# is asserted from this run (the full 50-instance run takes minutes in the local runtime: `python -m bench.payload`).
INSTANCES = 8
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


@pytest.fixture(autouse=True)
def snapshots_complete_at_once(dep):
    gaps_ebs.reset()
    gaps_ebs.set_pending_polls(0)
    yield
    gaps_ebs.reset()


def item_bytes(item: dict) -> int:
    """An estimate of the item's DynamoDB size (attribute names and values as JSON: a little more than DynamoDB
    counts)."""
    return len(json.dumps(item, default=str))


def breakdown(item: dict) -> dict[str, int]:
    return {k: len(json.dumps(v, default=str)) for k, v in item.items()}


def instances(dep, count: int) -> list[str]:
    ec2 = dep.client("ec2")
    mappings = [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}] + [
        {"DeviceName": f"/dev/sd{chr(ord('f') + n)}", "Ebs": {"VolumeSize": 1}} for n in range(VOLUMES - 1)]
    found = ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, InstanceType="t3.micro",
                              BlockDeviceMappings=mappings)["Instances"]
    return [i["InstanceId"] for i in found]


def assert_recorded(dep, inbox: Inbox, run: local.Execution, incident_id: str, outcome: str) -> dict:
    item = record(dep, incident_id)
    assert item is not None and item["status"] == outcome and item["executionId"] == run.arn
    assert item_bytes(item) < 300_000, breakdown(item)  # far below DynamoDB's 400 KB
    assert [e["status"] for e in item["timeline"]][-1] == outcome  # the closing entry
    assert len(inbox.about(incident_id)) == 1  # one notification
    return item


def test_a_large_manual_request_completes_with_record_manifest_and_one_notification(dep):
    """50 IAM users, 50 roles (the most Triage accepts) and instances with four volumes each."""
    inbox = Inbox(dep)
    ids = instances(dep, INSTANCES)
    iam = dep.client("iam")
    users = [f"bulk-{uuid.uuid4().hex[:6]}-{n}" for n in range(MAX_TARGETS)]
    roles = [f"bulk-role-{uuid.uuid4().hex[:6]}-{n}" for n in range(MAX_TARGETS)]
    for name in users:
        iam.create_user(UserName=name)
    for name in roles:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    incident_id = f"IR-BULK-{uuid.uuid4().hex[:6]}"
    request = {"manual": {"accountId": MEMBER, "region": REGION, "reason": "a large request: " + "r" * 900,
                          "incidentId": incident_id, "iamUsers": users, "roles": roles, "instances": ids}}
    run = local.execute(request, dep, timeout=1200)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained" and run.output["incidentId"] == incident_id
    per_instance = max(len(json.dumps(i)) for i in run.output["instances"]) + len(json.dumps(ids[0])) + 2
    assert run.largest_payload + (MAX_TARGETS - INSTANCES) * per_instance < LIMIT, (
        per_instance, sorted(run.payload_sizes, key=lambda p: -p[2])[:3])  # every state holds an instance once
    assert len(json.dumps(run.output)) + (MAX_TARGETS - INSTANCES) * per_instance < LIMIT
    assert [i["isolation"]["status"] for i in run.output["instances"]] == ["isolated"] * INSTANCES
    assert [i["evidence"]["counts"]["done"] for i in run.output["instances"]] == [VOLUMES] * INSTANCES
    assert [t["status"] for t in run.output["identities"]] == ["contained"] * 2 * MAX_TARGETS
    # the AWS state says so: every instance on the quarantine group, every user with the quarantine policy
    described = dep.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    groups = {g["GroupName"] for r in described for i in r["Instances"] for g in i["SecurityGroups"]}
    assert len(groups) == 1 and groups.pop().startswith("ir-quarantine-")  # one group, ours (name suffixed: squatting)
    assert all(iam.list_attached_user_policies(UserName=u)["AttachedPolicies"] for u in users)
    item = assert_recorded(dep, inbox, run, incident_id, "contained")
    manifest = json.loads(evidence_object(dep, item["manifest"]["key"], item["manifest"]["versionId"]))
    assert manifest["finding"] == request
    assert len(manifest["evidence"]["instances"]) == INSTANCES and len(manifest["evidence"]["identities"]) == 100
    copies = [v["forensicsCopy"]["snapshotId"] for i in manifest["evidence"]["instances"]
              for v in i["evidence"]["snapshots"]]
    assert len(set(copies)) == INSTANCES * VOLUMES  # every forensics copy named, even where a result was cut
    assert len(manifest["timeline"]) + manifest.get("timelineOmitted", 0) > 100 * 3


def test_an_event_at_eventbridge_s_size_limit_completes(dep):
    inbox = Inbox(dep)
    iam = dep.client("iam")
    name = f"big-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key)
    # attacker-controlled content (user agents, domains, tags) fills the finding to 256 KB
    ev["detail"]["title"] = "t" * 50_000
    ev["detail"]["description"] = "d" * 50_000
    service = ev["detail"].setdefault("service", {})
    service.setdefault("additionalInfo", {})["userAgent"] = "u" * 50_000
    service["action"] = {"awsApiCallAction": {"api": "ListUsers", "userAgent": "p" * 50_000}}
    ev["detail"]["resource"]["tags"] = [{"key": "k", "value": ""}]
    padding = 256_000 - len(json.dumps(ev))
    ev["detail"]["resource"]["tags"] = [{"key": "k", "value": "v" * padding}]
    assert 255_000 <= len(json.dumps(ev).encode()) <= 256_000 and local.matches_rule(ev)
    run = local.deliver(ev, dep)
    assert run is not None and run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    assert run.largest_payload < 16 * 1024, sorted(run.payload_sizes, key=lambda p: -p[2])[:3]
    incident_id = run.output["incidentId"]
    item = assert_recorded(dep, inbox, run, incident_id, "contained")
    manifest = json.loads(evidence_object(dep, item["manifest"]["key"], item["manifest"]["versionId"]))
    assert manifest["finding"] == ev  # the raw input, exactly as delivered, stored once
    assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
