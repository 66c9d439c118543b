"""Every region (README "Every region"): the findings forwarders and the regional member stacks of an estate that
names several regions, and the forensics stack in the forensics region."""
from __future__ import annotations

import pytest

from stacks import names
from stacks.config import load_context

REGIONS = "eu-west-1,us-east-1,ap-southeast-2"
FORENSICS_REGION = "eu-central-1"


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    from stacks.app import build_app

    context = {**load_context(), "externalId": "ir-responder-test-external-id", "regions": REGIONS,
               "forensicsRegion": FORENSICS_REGION}
    app, stacks = build_app(context, outdir=str(tmp_path_factory.mktemp("estate")))
    assembly = app.synth()
    return stacks, {s.stack_name: s for s in assembly.stacks}


def test_one_forwarder_per_extra_region_in_the_security_account(estate):
    stacks, synthesized = estate
    security = stacks[names.RESPONDER_STACK].account
    forwarders = {n: s.environment.region for n, s in synthesized.items() if n.startswith("IrFindings-")}
    assert forwarders == {names.finding_forwarder_stack(security, r): r for r in ("us-east-1", "ap-southeast-2")}
    for name, region in forwarders.items():
        template = synthesized[name].template
        rules = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
        assert len(rules) == 1
        rule = rules[0]["Properties"]
        assert rule["EventPattern"] == {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"],
                                        "detail": {"severity": [{"numeric": [">=", 4]}]}}
        assert rule["Targets"][0]["Arn"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"},
                                                               f":events:eu-west-1:{security}:event-bus/default"]]}
        roles = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
        assert len(roles) == 1 and roles[0]["Properties"]["RoleName"] == names.finding_forwarder_role_name(region)
        statements = roles[0]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        assert [(s["Action"], s["Effect"]) for s in statements] == [("events:PutEvents", "Allow")]


def test_every_member_gets_a_sharing_key_in_every_extra_region_and_its_roles_once(estate):
    stacks, synthesized = estate
    members = load_context()["memberAccounts"]
    regional = {n: (s.environment.account, s.environment.region) for n, s in synthesized.items()
                if n.startswith("IrMemberRegion-")}
    assert regional == {names.member_region_stack(a, r): (a, r) for a in members for r in ("us-east-1", "ap-southeast-2")}
    for name, (_account, region) in regional.items():
        resources = synthesized[name].template["Resources"].values()
        assert sorted(r["Type"] for r in resources) == ["AWS::KMS::Alias", "AWS::KMS::Key"]
        key = next(r for r in resources if r["Type"] == "AWS::KMS::Key")
        via = key["Properties"]["KeyPolicy"]["Statement"][1]["Condition"]["StringEquals"]["kms:ViaService"]
        assert via == [f"ec2.{region}.amazonaws.com", f"ec2.{FORENSICS_REGION}.amazonaws.com"]
    for account in members:  # IAM is global: the roles and the deny-all profile only in the member stack
        roles = [r for r in synthesized[names.member_stack(account)].template["Resources"].values()
                 if r["Type"] == "AWS::IAM::Role"]
        assert roles and all(synthesized[names.member_stack(account)].environment.region == "eu-west-1" for _ in roles)


def test_the_forensics_stack_and_evidence_live_in_the_forensics_region(estate):
    stacks, synthesized = estate
    forensics = synthesized[names.FORENSICS_STACK]
    assert forensics.environment.region == FORENSICS_REGION
    buckets = [r["Properties"].get("BucketName") for r in forensics.template["Resources"].values()
               if r["Type"] == "AWS::S3::Bucket"]
    assert f"ir-evidence-{forensics.environment.account}-{FORENSICS_REGION}" in buckets
    env = next(r for r in synthesized[names.RESPONDER_STACK].template["Resources"].values()
               if r["Type"] == "AWS::Lambda::Function")["Properties"]["Environment"]["Variables"]
    assert env["IR_REGIONS"] == REGIONS and env["IR_FORENSICS_REGION"] == FORENSICS_REGION
    # the forensics role may read the members' sharing keys of every region of the estate (through EC2 only)
    role = next(r for r in forensics.template["Resources"].values()
                if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == names.FORENSICS_ROLE_NAME)
    text = str(role)
    for region in REGIONS.split(","):
        assert f":kms:{region}:" in text
