"""Every region (README "Every region"): members in two regions, the forensics account in a third. An instance
finding in the non-responder region is isolated there and its evidence copied into the forensics region (read back
through boto3 there); a finding of a region outside the estate is refused naming the field."""
from __future__ import annotations

import pytest

from state_machines import local
from tests.conftest import load_example
from tests.worlds.workflow import access_key_event, republished

MEMBER, FORENSICS = "444455556666", "999988887777"
HOME, OTHER, EVIDENCE = "eu-west-1", "us-east-1", "eu-central-1"


@pytest.fixture(scope="module")
def estate():
    with local.aws(region=HOME):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=HOME,
                           regions=(HOME, OTHER), forensics_region=EVIDENCE)
        yield dep


def _instance(dep, region: str) -> str:
    ec2 = dep.client("ec2", MEMBER, region)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"] if ec2.describe_images()["Images"] else "ami-12c6146b"
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                             SubnetId=subnet)["Instances"][0]["InstanceId"]


def _finding(region: str, instance_id: str, finding_id: str) -> dict:
    event = load_example("guardduty-instance.json")
    event["region"] = region
    detail = event["detail"]
    detail.update(accountId=MEMBER, region=region, id=finding_id)
    event["account"] = MEMBER
    detail["resource"]["instanceDetails"]["instanceId"] = instance_id
    return event


def test_the_deployment_has_the_regional_resources(estate):
    assert estate.regions == (HOME, OTHER) and estate.forensics_region == EVIDENCE
    assert estate.environment["IR_REGIONS"] == f"{HOME},{OTHER}"
    for region in (HOME, OTHER):
        key = estate.client("kms", MEMBER, region).describe_key(KeyId="alias/ir-evidence-sharing")["KeyMetadata"]
        assert key["Arn"] == estate.regional_sharing_keys[(MEMBER, region)] and f":{region}:" in key["Arn"]
    assert f":{EVIDENCE}:" in estate.forensics_key_arn and estate.bucket.endswith(EVIDENCE)


def test_an_instance_finding_of_another_region_is_isolated_there_and_its_evidence_copied_to_the_forensics_region(
        estate):
    instance_id = _instance(estate, OTHER)
    run = local.deliver(_finding(OTHER, instance_id, "f" * 32), estate, name="regions-other")
    assert run is not None and run.status == "SUCCEEDED", (run.error, run.cause)
    ec2 = estate.client("ec2", MEMBER, OTHER)
    tags = {t["Key"]: t["Value"] for t in ec2.describe_instances(InstanceIds=[instance_id])
            ["Reservations"][0]["Instances"][0].get("Tags", [])}
    assert tags.get("ir:quarantine") == "isolated"
    copies = estate.client("ec2", FORENSICS, EVIDENCE).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:ir:incident", "Values": [tags["ir:incident"]]}])["Snapshots"]
    assert copies and all(c["KmsKeyId"] == estate.forensics_key_arn for c in copies)
    assert all({t["Key"] for t in c["Tags"]} >= {"ir:incident", "ir:source", "ir:collected-by", "ir:hash"}
               for c in copies)
    sources = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:ir:incident", "Values": [tags["ir:incident"]]}])["Snapshots"]
    assert {t["Value"] for s in sources for t in s["Tags"] if t["Key"] == "ir:hash"} == {
        t["Value"] for c in copies for t in c["Tags"] if t["Key"] == "ir:hash"}
    # nothing of it in the responder's region of the forensics account
    assert not estate.client("ec2", FORENSICS, HOME).describe_snapshots(OwnerIds=["self"])["Snapshots"]


def test_a_finding_of_a_region_outside_the_estate_is_refused_naming_the_field(estate):
    run = local.deliver(_finding("ap-southeast-2", "i-0123456789abcdef0", "e" * 32), estate, name="regions-outside")
    assert run.status == "FAILED" and "region" in (run.cause or "")


def test_an_instance_finding_of_the_responders_region_copies_its_evidence_to_the_forensics_region_too(estate):
    instance_id = _instance(estate, HOME)
    run = local.deliver(_finding(HOME, instance_id, "d" * 32), estate, name="regions-home")
    assert run is not None and run.status == "SUCCEEDED", (run.error, run.cause)
    copies = estate.client("ec2", FORENSICS, EVIDENCE).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:ir:incident", "Values": [run.output["incident"]["incidentId"]]}]
    )["Snapshots"] if run.output and "incident" in run.output else []
    ec2 = estate.client("ec2", MEMBER, HOME)
    tags = {t["Key"]: t["Value"] for t in ec2.describe_instances(InstanceIds=[instance_id])
            ["Reservations"][0]["Instances"][0].get("Tags", [])}
    copies = copies or estate.client("ec2", FORENSICS, EVIDENCE).describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:ir:incident", "Values": [tags["ir:incident"]]}])["Snapshots"]
    assert tags.get("ir:quarantine") == "isolated" and copies




def test_an_iam_finding_from_any_region_contains_the_user_once(estate):
    iam = estate.client("iam", MEMBER)
    iam.create_user(UserName="ci-deployer")
    key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
    finding = access_key_event(account=MEMBER, region=OTHER, user_type="IAMUser", name="ci-deployer", key=key)
    first = local.deliver(finding, estate, name="regions-iam-other")
    assert first.status == "SUCCEEDED", (first.error, first.cause)
    attached = iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AWSCompromisedKeyQuarantineV2"]
    assert iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    # the same finding again (GuardDuty re-publishes it) and the same user's finding from the other region
    again = local.deliver(republished(finding), estate, name="regions-iam-again")
    home = local.deliver(access_key_event(account=MEMBER, region=HOME, user_type="IAMUser", name="ci-deployer",
                                          key=key), estate, name="regions-iam-home")
    assert again.status == "SUCCEEDED" and home.status == "SUCCEEDED", (home.error, home.cause)
    assert iam.list_attached_user_policies(UserName="ci-deployer")["AttachedPolicies"] == attached
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="ci-deployer")["AccessKeyMetadata"]] == [key]


def test_the_workstation_opens_another_regions_evidence_in_the_forensics_region(estate):
    """The copies live in the forensics Region, so the workstation and its volumes are there (README "Every
    region"), whatever Region the contaminated instance is in."""
    instance_id = _instance(estate, OTHER)
    run = local.deliver(_finding(OTHER, instance_id, "c" * 32), estate, name="regions-ws-source")
    assert run is not None and run.status == "SUCCEEDED", (run.error, run.cause)
    incident_id = {t["Key"]: t["Value"] for t in estate.client("ec2", MEMBER, OTHER).describe_instances(
        InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["Tags"]}["ir:incident"]
    ec2 = estate.client("ec2", FORENSICS, EVIDENCE)
    vpc = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.90.1.0/24",
                               AvailabilityZone=f"{EVIDENCE}a")["Subnet"]["SubnetId"]
    workstation = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, InstanceType="t3.large",
                                    SubnetId=subnet, TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                        {"Key": "ir:purpose", "Value": "forensic-workstation"}]}]
                                    )["Instances"][0]["InstanceId"]
    analysis = local.execute({"analyze": {"incidentId": incident_id, "reason": "open the disks",
                                          "workstation": {"instanceId": workstation}}}, estate, name="regions-ws")
    assert analysis.status == "SUCCEEDED", (analysis.error, analysis.cause)
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:ir:incident", "Values": [incident_id]},
                                            {"Name": "tag:ir:purpose", "Values": ["forensic-analysis"]}])["Volumes"]
    copies = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:ir:incident", "Values": [incident_id]}])["Snapshots"]
    assert volumes and sorted(v["SnapshotId"] for v in volumes) == sorted(c["SnapshotId"] for c in copies)
    assert all(v["AvailabilityZone"] == f"{EVIDENCE}a" and v["Attachments"][0]["InstanceId"] == workstation
               for v in volumes)


def test_the_manifest_names_each_snapshot_where_it_is_and_a_second_run_copies_nothing_again(estate):
    """The chain across regions: the manifest (in the forensics region's evidence bucket) names the member's
    snapshots in the instance's region and the forensics copies in the forensics region, with equal digests; the
    same finding again adds no copy (read back through boto3 in each region)."""
    import json

    from lambdas.responder import custody

    instance_id = _instance(estate, OTHER)
    finding = _finding(OTHER, instance_id, "b" * 32)
    run = local.deliver(finding, estate, name="regions-manifest")
    assert run is not None and run.status == "SUCCEEDED", (run.error, run.cause)
    s3 = estate.client("s3", FORENSICS, EVIDENCE)
    manifest = json.loads(s3.get_object(Bucket=estate.bucket, Key=run.output["manifest"]["key"])["Body"].read())
    snaps = custody.manifest_snapshots(manifest)
    where = {(s["account"], s["region"]) for s in snaps}
    assert (MEMBER, OTHER) in where and (FORENSICS, EVIDENCE) in where and (FORENSICS, OTHER) not in where
    copies = [s for s in snaps if s["account"] == FORENSICS]
    sources = [s for s in snaps if s["account"] == MEMBER]
    assert copies and all(s["digest"] for s in copies)
    assert {s["digest"] for s in copies} <= {s["digest"] for s in sources}
    ec2 = estate.client("ec2", FORENSICS, EVIDENCE)
    incident = manifest["incidentId"]
    before = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:ir:incident", "Values": [incident]}])["Snapshots"]
    assert sorted(c["SnapshotId"] for c in before) == sorted(s["snapshotId"] for s in copies)
    again = local.deliver(republished(finding), estate, name="regions-manifest-again")
    assert again is None or again.status == "SUCCEEDED", (again.error, again.cause)
    after = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:ir:incident", "Values": [incident]}])["Snapshots"]
    assert sorted(c["SnapshotId"] for c in after) == sorted(c["SnapshotId"] for c in before)
