"""The forensic workstation through the shipped state machine (local.execute), in the forensics account: an
instance finding first (so the incident's forensics copies exist), then ``{"analyze": ...}`` requests: volumes
from the copies in the workstation's zone, tagged and attached (read back through boto3), the snapshots unchanged,
refusals (untagged workstation, another account's instance, an AMI the forensics account does not own), bad input,
a second run that makes nothing, and the live-response rule only when asked."""
from __future__ import annotations

import json

import pytest

from state_machines import gaps_ebs, local
from tests.worlds.deployment import deployment
from tests.worlds.evidence import FORENSICS, MEMBER, REGION, build_instance, evidence_of, manual_request, tags

dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION, default_amis=False)
ZONE = f"{REGION}a"
AMI = "ami-0abcdef1234567890"


@pytest.fixture(autouse=True)
def fresh_hooks(dep):
    gaps_ebs.reset()
    yield
    gaps_ebs.reset()


@pytest.fixture(scope="module")
def incident(dep):
    """One instance finding answered (isolated, three verified forensics copies): the incident to analyze."""
    inst = build_instance(dep)
    run = local.execute(manual_request(inst.instance_id, "IR-WS-1"), dep)
    evidence = evidence_of(run, inst.instance_id)
    assert evidence["status"] == "collected", evidence.get("message")
    copies = sorted(i["forensicsCopy"]["snapshotId"] for i in evidence["snapshots"])
    return {"id": "IR-WS-1", "instance": inst.instance_id, "copies": copies}


def subnet(dep, account=FORENSICS, zone=ZONE) -> str:
    ec2 = dep.client("ec2", account)
    found = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]}])["Subnets"]
    if found:
        return found[0]["SubnetId"]
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.1.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]


def workstation(dep, *, account=FORENSICS, purpose="forensic-workstation") -> str:
    ec2 = dep.client("ec2", account)
    tagging = [{"ResourceType": "instance", "Tags": [{"Key": "ir:purpose", "Value": purpose}]}] if purpose else []
    return ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.large",
                             SubnetId=subnet(dep, account), TagSpecifications=tagging)["Instances"][0]["InstanceId"]


def analyze(incident_id, ws, **extra) -> dict:
    return {"analyze": {"incidentId": incident_id, "reason": "open the disks", "workstation": ws, **extra}}


def output(run) -> dict:
    for e in reversed(run.events):
        details = e.get("stateExitedEventDetails") or {}
        if details.get("name") == "Finalize":
            return json.loads(details["output"])
    raise AssertionError(f"Finalize never ran: {run.status} {run.error} {run.cause}")


def volumes_of(dep, incident_id, account=FORENSICS) -> list[dict]:
    return dep.client("ec2", account).describe_volumes(Filters=[
        {"Name": "tag:ir:incident", "Values": [incident_id]},
        {"Name": "tag:ir:purpose", "Values": ["forensic-analysis"]}])["Volumes"]


def snapshots(dep, ids) -> list[dict]:
    found = dep.client("ec2", FORENSICS).describe_snapshots(SnapshotIds=list(ids))["Snapshots"]
    return sorted(({k: s.get(k) for k in ("SnapshotId", "State", "VolumeSize", "KmsKeyId", "Encrypted")}
                   | {"Tags": sorted((t["Key"], t["Value"]) for t in s.get("Tags") or [])} for s in found),
                  key=lambda s: s["SnapshotId"])


def states_entered(run) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in run.events if e.get("stateEnteredEventDetails")]


def test_volumes_from_the_forensics_copies_attached_to_the_workstation_and_a_second_run_makes_nothing(dep, incident):
    ws = workstation(dep)
    before = snapshots(dep, incident["copies"])
    run = local.execute(analyze(incident["id"], {"instanceId": ws}), dep)
    out = output(run)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert out["outcome"] == "analysis_ready" and out["analysis"]["workstation"] == ws

    volumes = volumes_of(dep, incident["id"])
    assert sorted(v["SnapshotId"] for v in volumes) == incident["copies"]
    for v in volumes:
        assert v["AvailabilityZone"] == ZONE
        assert [(a["InstanceId"], a["State"]) for a in v["Attachments"]] == [(ws, "attached")]
        t = tags(v)
        assert t["ir:incident"] == incident["id"] and t["ir:workstation"] == ws
        assert t["ir:source"] == f"arn:aws:ec2:{REGION}:{FORENSICS}:snapshot/{v['SnapshotId']}"
    devices = sorted(a["Device"] for v in volumes for a in v["Attachments"])
    assert devices == ["/dev/sdf", "/dev/sdg", "/dev/sdh"]
    assert snapshots(dep, incident["copies"]) == before  # evidence never modified
    # nothing in the member account: no live response unless asked
    assert not [c for c in run.aws_calls if c["api"] == "ec2:AuthorizeSecurityGroupIngress"]

    # the record: the response's status stays; the analysis is listed with its manifest
    from responder.aws.dynamodb import deserialize

    ddb = local.session(None, run.arn.split(":")[3]).client("dynamodb")
    item = deserialize(ddb.get_item(TableName=out["record"]["table"],
                                                       Key={"incidentId": {"S": incident["id"]}})["Item"])
    assert item["status"] != "analysis_ready" and item["analyses"][-1]["workstation"] == ws
    manifest = dep.client("s3", FORENSICS).get_object(Bucket=dep.bucket, Key=out["manifest"]["key"])["Body"].read()
    assert out["manifest"]["key"].startswith(f"incidents/{incident['id']}/manifest-analysis-")
    document = json.loads(manifest)
    assert sorted(v["volumeId"] for v in document["analysis"]["volumes"]) == sorted(v["VolumeId"] for v in volumes)

    again = local.execute(analyze(incident["id"], {"instanceId": ws}), dep)
    assert again.status == "SUCCEEDED" and output(again)["outcome"] == "analysis_ready"
    assert sorted(v["VolumeId"] for v in volumes_of(dep, incident["id"])) == sorted(v["VolumeId"] for v in volumes)
    made = {c["api"] for c in again.aws_calls} & {"ec2:CreateVolume", "ec2:AttachVolume", "ec2:RunInstances"}
    assert not made
    print("transitions first run", len(states_entered(run)), "repeat", len(states_entered(again)))


def test_live_response_opens_exactly_one_port_from_the_workstation_address(dep, incident):
    ws = workstation(dep)
    run = local.execute(analyze(incident["id"], {"instanceId": ws}, liveResponse={"port": 22}), dep)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    ip = dep.client("ec2", FORENSICS).describe_instances(InstanceIds=[ws])["Reservations"][0]["Instances"][0][
        "PrivateIpAddress"]
    member = dep.client("ec2", MEMBER)
    instance = member.describe_instances(InstanceIds=[incident["instance"]])["Reservations"][0]["Instances"][0]
    groups = member.describe_security_groups(
        GroupIds=[g["GroupId"] for g in instance["SecurityGroups"]])["SecurityGroups"]
    quarantine = [g for g in groups if tags(g).get("ir:purpose") == "quarantine"]
    assert len(quarantine) == 1
    opened = [(p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"]) for p in quarantine[0]["IpPermissions"]
              for r in p.get("IpRanges") or [] if r["CidrIp"] == f"{ip}/32"]
    assert opened == [("tcp", 22, 22, f"{ip}/32")]
    assert output(run)["analysis"]["liveResponse"][0]["status"] == "opened"
    again = local.execute(analyze(incident["id"], {"instanceId": ws}, liveResponse={"port": 22}), dep)
    assert output(again)["analysis"]["liveResponse"][0]["status"] == "unchanged"
    assert not [c for c in again.aws_calls if c["api"] == "ec2:AuthorizeSecurityGroupIngress"]


@pytest.mark.parametrize("case", ["untagged", "look-alike", "other-account"])
def test_a_workstation_that_is_not_the_forensics_accounts_tagged_instance_is_refused(dep, incident, case):
    ws = {"untagged": lambda: workstation(dep, purpose=None),
          "look-alike": lambda: workstation(dep, purpose="forensic-workstation "),
          "other-account": lambda: workstation(dep, account=MEMBER)}[case]()
    before = len(volumes_of(dep, incident["id"]))
    run = local.execute(analyze(incident["id"], {"instanceId": ws}), dep)
    assert run.status == "FAILED" and run.error == "WorkstationRefused", (run.error, run.cause)
    assert output(run)["outcome"] == "analysis_refused"
    assert len(volumes_of(dep, incident["id"])) == before
    assert not {c["api"] for c in run.aws_calls} & {"ec2:CreateVolume", "ec2:AttachVolume"}


def test_a_workstation_from_the_forensic_ami_is_launched_tagged_without_public_ip(dep, incident):
    ec2 = dep.client("ec2", FORENSICS)
    source = workstation(dep)
    image = ec2.create_image(InstanceId=source, Name="forensic-workstation-1")["ImageId"]
    ec2.create_tags(Resources=[image], Tags=[{"Key": "ir:purpose", "Value": "forensic-workstation"}])
    request = {"imageId": image, "instanceType": "c5.large", "subnetId": subnet(dep)}
    run = local.execute(analyze(incident["id"], request), dep)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    launched = output(run)["analysis"]["workstation"]
    instance = ec2.describe_instances(InstanceIds=[launched])["Reservations"][0]["Instances"][0]
    assert instance["ImageId"] == image and instance["State"]["Name"] == "running"
    assert tags(instance)["ir:purpose"] == "forensic-workstation" and tags(instance)["ir:incident"] == incident["id"]
    assert not instance.get("PublicIpAddress")
    assert sorted(v["SnapshotId"] for v in volumes_of(dep, incident["id"])
                  if tags(v)["ir:workstation"] == launched) == incident["copies"]
    again = local.execute(analyze(incident["id"], request), dep)
    assert output(again)["analysis"]["workstation"] == launched  # found again by its tags: no second launch
    assert not [c for c in again.aws_calls if c["api"] in ("ec2:RunInstances", "ec2:CreateVolume")]


def test_an_ami_the_forensics_account_does_not_own_or_tag_is_refused(dep, incident):
    member = dep.client("ec2", MEMBER)
    theirs = member.create_image(InstanceId=workstation(dep, account=MEMBER), Name="attacker-image")["ImageId"]
    member.create_tags(Resources=[theirs], Tags=[{"Key": "ir:purpose", "Value": "forensic-workstation"}])
    member.modify_image_attribute(ImageId=theirs, LaunchPermission={"Add": [{"UserId": FORENSICS}]})
    ec2 = dep.client("ec2", FORENSICS)
    untagged = ec2.create_image(InstanceId=workstation(dep), Name="plain-image")["ImageId"]
    for image in (theirs, untagged):
        run = local.execute(analyze(incident["id"], {"imageId": image, "instanceType": "c5.large",
                                                     "subnetId": subnet(dep)}), dep)
        assert run.error == "WorkstationRefused", (image, run.error, run.cause)
        assert not [c for c in run.aws_calls if c["api"] == "ec2:RunInstances"]


@pytest.mark.parametrize("request_, field", [
    ({"analyze": {"incidentId": "IR-WS-1", "reason": "x", "workstation": {"instanceId": "i-1"}}},
     "analyze.workstation.instanceId"),
    ({"analyze": {"incidentId": "IR-WS-1", "reason": "x", "workstation": {"instanceId": "i-0123456789abcdef0"},
                  "extra": 1}}, "analyze.extra"),
    ({"analyze": {"incidentId": "IR-WS-1", "reason": "x", "workstation": {"imageId": "ami-0123456789abcdef0"}}},
     "analyze.workstation.instanceType"),
    ({"analyze": {"incidentId": "IR-WS-1", "reason": "x", "workstation": {"instanceId": "i-0123456789abcdef0"},
                  "liveResponse": {"port": "0-65535"}}}, "analyze.liveResponse.port"),
    ({"analyze": {"incidentId": "IR-NEVER", "reason": "x", "workstation": {"instanceId": "i-0123456789abcdef0"}}},
     "analyze.incidentId"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_made(dep, incident, request_, field):
    before = len(volumes_of(dep, incident["id"]))
    run = local.execute(request_, dep)
    assert run.status == "FAILED" and run.error == "InvalidInput" and field in run.cause, run.cause
    assert len(volumes_of(dep, incident["id"])) == before
    assert not [c for c in run.aws_calls if c["api"].startswith("ec2:")]


def test_dry_run_plans_and_makes_nothing(dep, incident):
    ws = workstation(dep)
    run = local.execute(analyze(incident["id"], {"instanceId": ws}, dryRun=True, liveResponse={"port": 22}), dep)
    out = output(run)
    assert run.status == "SUCCEEDED" and out["outcome"] == "dry_run_plan", (run.error, run.cause)
    assert not [v for v in volumes_of(dep, incident["id"]) if tags(v)["ir:workstation"] == ws]
    assert not {c["api"] for c in run.aws_calls} & {"ec2:CreateVolume", "ec2:AttachVolume",
                                                    "ec2:AuthorizeSecurityGroupIngress"}


def test_the_analysis_waits_while_volumes_create_and_attach(dep, incident):
    from state_machines import gaps_ec2

    ws = workstation(dep)
    gaps_ec2.set_volume_lag(3)  # each volume: creating, then attaching, for a few describes (EBS lifecycle)
    try:
        run = local.execute(analyze(incident["id"], {"instanceId": ws}), dep)
    finally:
        gaps_ec2.reset()
    assert run.status == "SUCCEEDED" and output(run)["outcome"] == "analysis_ready", (run.error, run.cause)
    waits = states_entered(run).count("WaitForAnalysis")
    assert waits >= 3  # creating, then attaching: each a Wait/Choice loop, never a sleep in the task
    assert len(states_entered(run)) == 8 + 3 * waits  # 8 without a wait, 3 per wait
    volumes = [v for v in volumes_of(dep, incident["id"]) if tags(v)["ir:workstation"] == ws]
    assert len(volumes) == 3 and all(v["Attachments"][0]["State"] == "attached" for v in volumes)
    print("waits", waits, "transitions", len(states_entered(run)))


def test_a_tampered_copy_and_a_look_alike_shared_in_are_refused_the_rest_opened(dep):
    inst = build_instance(dep, kinds=("aws-ebs",))
    first = local.execute(manual_request(inst.instance_id, "IR-WS-2"), dep)
    copies = sorted(i["forensicsCopy"]["snapshotId"] for i in evidence_of(first, inst.instance_id)["snapshots"])
    assert len(copies) == 2
    forensics = dep.client("ec2", FORENSICS)
    forensics.create_tags(Resources=[copies[0]], Tags=[{"Key": "ir:hash", "Value": "sha256:" + "0" * 64}])
    # the attacker in the member account: a snapshot of their own, tagged like evidence, shared with forensics
    member = dep.client("ec2", MEMBER)
    volume = member.create_volume(Size=1, AvailabilityZone=ZONE)["VolumeId"]
    bait = member.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "ir:incident", "Value": "IR-WS-2"}, {"Key": "ir:hash", "Value": "sha256:" + "1" * 64}]}])
    member.modify_snapshot_attribute(SnapshotId=bait["SnapshotId"], Attribute="createVolumePermission",
                                     OperationType="add", UserIds=[FORENSICS])
    ws = workstation(dep)
    run = local.execute(analyze("IR-WS-2", {"instanceId": ws}), dep)
    out = output(run)
    assert run.status == "FAILED" and out["outcome"] == "analysis_incomplete", (run.error, run.cause)
    assert out["analysis"]["refused"] == 1 and copies[0] in run.cause
    made = volumes_of(dep, "IR-WS-2")
    assert [v["SnapshotId"] for v in made] == [copies[1]]  # never the tampered copy, never the bait
