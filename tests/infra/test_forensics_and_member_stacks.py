"""The forensics and member stacks: what they contain, per layout, with CDK's Template assertions."""
from __future__ import annotations

import pytest

from stacks import names
from tests.worlds.infra import assembly, multi, single  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def forensics(multi):  # noqa: F811
    from aws_cdk.assertions import Template

    return Template.from_json(multi.template(names.FORENSICS_STACK))


def test_the_evidence_bucket_is_versioned_encrypted_private_tls_only_and_locked(forensics, multi):  # noqa: F811
    from aws_cdk.assertions import Match

    config = multi.config
    forensics.has_resource_properties("AWS::S3::Bucket", {
        "BucketName": f"ir-evidence-{config.forensics_account}-{config.region}",
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": [Match.string_like_regexp("ForensicsKey"), "Arn"]}},
        }]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "ObjectLockEnabled": True,
        "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LoggingConfiguration": Match.object_like({"LogFilePrefix": "evidence/"}),
    })
    forensics.has_resource("AWS::S3::Bucket", {
        "DeletionPolicy": "Retain",
        "Properties": Match.object_like({"BucketName": f"ir-evidence-{config.forensics_account}-{config.region}"})})
    # TLS only, on both buckets
    forensics.resource_properties_count_is("AWS::S3::BucketPolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Action": "s3:*", "Principal": {"AWS": "*"},
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}}, 2)


def test_nothing_in_the_forensics_stack_is_public(multi):  # noqa: F811
    for policy in multi.resources(names.FORENSICS_STACK, "AWS::S3::BucketPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] == {"Service": "logging.s3.amazonaws.com"}
                assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": multi.config.forensics_account}


def test_the_forensics_key_is_rotated_and_aliased(forensics):
    forensics.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    forensics.has_resource_properties("AWS::KMS::Alias", {"AliasName": names.FORENSICS_KEY_ALIAS})
    forensics.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Retain"})


def test_the_forensics_stack_tells_the_responder_its_key(forensics):
    from aws_cdk.assertions import Match

    forensics.has_output("ForensicsKeyArn",
                         {"Value": {"Fn::GetAtt": [Match.string_like_regexp("ForensicsKey"), "Arn"]}})


def test_each_stack_deploys_into_its_own_account(multi):  # noqa: F811
    config = multi.config
    expected = {names.RESPONDER_STACK: config.security_account, names.FORENSICS_STACK: config.forensics_account}
    expected.update({names.member_stack(a): a for a in config.member_accounts})
    watches = {names.member_watch_stack(a): f"aws://{a}/us-east-1" for a in config.member_accounts}
    forwarders = {names.signal_forwarder_stack(a, r): f"aws://{a}/{r}" for a in config.member_accounts
                  for r in ("us-east-1", "us-west-2")}  # exposed-key events: stacks.catalog.SIGNAL_REGIONS
    assert multi.stacks == {**{name: f"aws://{account}/{config.region}" for name, account in expected.items()},
                            **watches, **forwarders}
    assert len(set(expected.values())) == 4  # security != forensics != members


def test_the_single_account_layout_puts_all_three_stacks_into_the_security_account(single):  # noqa: F811
    config = single.config
    account = config.security_account
    assert single.stacks == {names.RESPONDER_STACK: f"aws://{account}/{config.region}",
                             names.FORENSICS_STACK: f"aws://{account}/{config.region}",
                             names.member_stack(account): f"aws://{account}/{config.region}",
                             names.member_watch_stack(account): f"aws://{account}/us-east-1",
                             names.signal_forwarder_stack(account, "us-east-1"): f"aws://{account}/us-east-1",
                             names.signal_forwarder_stack(account, "us-west-2"): f"aws://{account}/us-west-2"}
    env = single.one(names.RESPONDER_STACK, "AWS::Lambda::Function",
                     FunctionName="ir-responder-Triage")["Properties"]["Environment"]["Variables"]
    assert env["IR_FORENSICS_ACCOUNT"] == account


def test_every_member_stack_has_the_role_the_key_and_the_profile(assembly):  # noqa: F811
    for stack in assembly.member_stacks:
        counts = {t: len(assembly.resources(stack, t)) for t in
                  ("AWS::IAM::Role", "AWS::KMS::Key", "AWS::KMS::Alias", "AWS::IAM::InstanceProfile")}
        assert counts == {"AWS::IAM::Role": 4, "AWS::KMS::Key": 1, "AWS::KMS::Alias": 1,
                          "AWS::IAM::InstanceProfile": 1}
        assert {r["Properties"]["RoleName"] for r in assembly.resources(stack, "AWS::IAM::Role").values()} == {
            names.MEMBER_ROLE_NAME, names.MEMBER_READ_ROLE_NAME, names.MEMBER_RELEASE_ROLE_NAME,
            names.DENY_ALL_ROLE_NAME}
