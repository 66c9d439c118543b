"""Least privilege, proven on the synthesized templates of both layouts: every role grants exactly the actions the
code declares next to the calls (`responder.permissions`, read now, not copied here), no wildcard action, resources
scoped where IAM allows it; trust limited to the responder's own roles with the external id; the forensics key
usable only by the forensics account, the sharing keys by the forensics account only through EC2."""
from __future__ import annotations

import pytest

from responder import permissions, settings
from stacks import names, policies
from tests.infra_world import allowed_actions, as_list, assembly, flat, multi, role, role_statements  # noqa: F401

P = "<AWS::Partition>"


def _assert_no_wildcard_actions(statements: list[dict]) -> None:
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert not [a for a in as_list(statement["Action"]) if "*" in a or "?" in a], statement


def _assert_trusts_only_the_responder(role_resource: dict, assembly) -> None:  # noqa: F811
    config = assembly.config
    (statement,) = role_resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert {k: flat(v) for k, v in statement["Principal"].items()} == {
        "AWS": f"arn:{P}:iam::{config.security_account}:root"}
    assert set(statement["Condition"]) == {"ArnLike", "StringEquals"}
    assert {k: flat(v) for k, v in statement["Condition"]["ArnLike"].items()} == {
        "aws:PrincipalArn": f"arn:{P}:iam::{config.security_account}:role/ir-responder-*"}
    assert statement["Condition"]["StringEquals"] == {"sts:ExternalId": config.external_id}


def test_the_names_the_stacks_use_are_the_ones_the_code_expects():
    assert names.MEMBER_ROLE_NAME == settings.MEMBER_ROLE_NAME
    assert names.FORENSICS_ROLE_NAME == settings.FORENSICS_ROLE_NAME
    assert names.SHARING_KEY_ALIAS == settings.SHARING_KEY_ALIAS
    assert names.DENY_ALL_PROFILE == settings.DENY_ALL_PROFILE
    assert names.DENY_ALL_ROLE_NAME == settings.DENY_ALL_ROLE_NAME
    for name in (names.MEMBER_ROLE_NAME, names.FORENSICS_ROLE_NAME, names.STATE_MACHINE_ROLE_NAME,
                 names.DENY_ALL_ROLE_NAME):
        assert name.startswith(names.ROLE_PREFIX)


# ---------------------------------------------------------------------------------------------------------------
# Member role
# ---------------------------------------------------------------------------------------------------------------
def test_the_member_role_grants_exactly_the_declared_member_actions(assembly):  # noqa: F811
    declared = set(permissions.member_actions())
    assert declared, "no member actions declared"
    for stack in assembly.member_stacks:
        statements = role_statements(role(assembly, stack, names.MEMBER_ROLE_NAME))
        assert allowed_actions(statements) == declared
        assert all(s["Effect"] == "Allow" for s in statements)
        _assert_no_wildcard_actions(statements)


def test_the_member_role_scopes_pass_role_and_policy_attachment(assembly):  # noqa: F811
    for stack in assembly.member_stacks:
        account = stack.rsplit("-", 1)[1]
        statements = {s["Sid"]: s for s in role_statements(role(assembly, stack, names.MEMBER_ROLE_NAME))}
        passing = [s for s in statements.values() if "iam:PassRole" in as_list(s["Action"])]
        if "iam:PassRole" in permissions.member_actions():
            (statement,) = passing
            assert as_list(statement["Action"]) == ["iam:PassRole"]
            deny_all = assembly.one(stack, "AWS::IAM::Role", RoleName=names.DENY_ALL_ROLE_NAME)
            logical_id = next(k for k, v in assembly.resources(stack, "AWS::IAM::Role").items() if v is deny_all)
            assert statement["Resource"] == {"Fn::GetAtt": [logical_id, "Arn"]}
        if "iam:AttachUserPolicy" in permissions.member_actions():
            attach = statements["AttachOnlyTheQuarantinePolicy"]
            assert as_list(attach["Action"]) == ["iam:AttachUserPolicy"]
            assert flat(attach["Condition"]["ArnEquals"]["iam:PolicyARN"]) == (
                f"arn:{P}:iam::aws:policy/AWSCompromisedKeyQuarantineV2")
        for statement in statements.values():  # every scoped resource is in this account, or conditioned
            for resource in as_list(statement["Resource"]):
                text = flat(resource)
                assert text == "*" or text.startswith("<") or f":{account}:" in text or (
                    text == f"arn:{P}:ec2:*::snapshot/*" and statement["Sid"] == "OnlyTheRespondersSnapshots"), text


def _assert_snapshot_and_key_conditions(statements: list[dict], security_account: str) -> None:
    for statement in statements:
        actions = set(as_list(statement["Action"]))
        if actions & policies.EVIDENCE_SNAPSHOT_ACTIONS:
            assert actions <= policies.EVIDENCE_SNAPSHOT_ACTIONS
            assert {k: {kk: flat(vv) for kk, vv in v.items()} for k, v in statement["Condition"].items()} == {
                "StringLike": {"aws:ResourceTag/ir:collected-by":
                               f"arn:{P}:states:*:{security_account}:execution:ir-responder-containment:*"}}
        kms = {a for a in actions if a.startswith("kms:")}
        if kms:
            assert kms == actions, "KMS actions in statements of their own"
            if kms != {"kms:DescribeKey"}:
                assert "kms:ViaService" in statement["Condition"]["StringLike"], statement
            if "kms:CreateGrant" in kms:
                assert kms == {"kms:CreateGrant"}
                assert statement["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_destructive_snapshot_actions_and_kms_are_conditioned(assembly):  # noqa: F811
    security = assembly.config.security_account
    for stack in assembly.member_stacks:
        _assert_snapshot_and_key_conditions(role_statements(role(assembly, stack, names.MEMBER_ROLE_NAME)), security)
    _assert_snapshot_and_key_conditions(
        role_statements(role(assembly, names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME)), security)


def test_the_member_role_trusts_only_the_responders_roles_with_the_external_id(assembly):  # noqa: F811
    for stack in assembly.member_stacks:
        resource = role(assembly, stack, names.MEMBER_ROLE_NAME)
        _assert_trusts_only_the_responder(resource, assembly)
        assert {"Key": "ir:protected", "Value": "true"} in resource["Properties"]["Tags"]


def test_the_deny_all_instance_profile(assembly):  # noqa: F811
    for stack in assembly.member_stacks:
        deny_role = role(assembly, stack, names.DENY_ALL_ROLE_NAME)
        assert role_statements(deny_role) == [
            {"Sid": "DenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}]
        (trust,) = deny_role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
        (profile,) = assembly.resources(stack, "AWS::IAM::InstanceProfile").values()
        assert profile["Properties"]["InstanceProfileName"] == names.DENY_ALL_PROFILE
        (role_ref,) = profile["Properties"]["Roles"]
        assert assembly.template(stack)["Resources"][role_ref["Ref"]] is deny_role


def test_the_sharing_key_lets_the_forensics_account_use_it_only_through_ec2(assembly):  # noqa: F811
    config = assembly.config
    for stack in assembly.member_stacks:
        account = stack.rsplit("-", 1)[1]
        (key,) = assembly.resources(stack, "AWS::KMS::Key").values()
        assert key["Properties"]["EnableKeyRotation"] is True
        (alias,) = assembly.resources(stack, "AWS::KMS::Alias").values()
        assert alias["Properties"]["AliasName"] == names.SHARING_KEY_ALIAS
        statements = key["Properties"]["KeyPolicy"]["Statement"]
        assert {flat(s["Principal"]["AWS"]) for s in statements} == {
            f"arn:{P}:iam::{account}:root", f"arn:{P}:iam::{config.forensics_account}:root"}
        (own,) = [s for s in statements if s["Sid"] == "ThisAccountThroughIam"]
        assert flat(own["Principal"]["AWS"]) == f"arn:{P}:iam::{account}:root" and "Condition" not in own
        others = [s for s in statements if s["Sid"] != "ThisAccountThroughIam"]
        for forensics in others:
            assert flat(forensics["Principal"]["AWS"]) == f"arn:{P}:iam::{config.forensics_account}:root"
            assert forensics["Condition"]["StringEquals"] == {"kms:ViaService": f"ec2.{config.region}.amazonaws.com"}
            assert not [a for a in as_list(forensics["Action"]) if "*" in a]
            if "kms:CreateGrant" in as_list(forensics["Action"]):
                assert forensics["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        assert {a for s in others for a in as_list(s["Action"])} == set(policies.SHARING_KEY_FORENSICS_ACTIONS)


# ---------------------------------------------------------------------------------------------------------------
# Forensics account
# ---------------------------------------------------------------------------------------------------------------
def test_the_forensics_role_grants_exactly_the_declared_forensics_actions(assembly):  # noqa: F811
    statements = role_statements(role(assembly, names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME))
    assert allowed_actions(statements) == set(permissions.forensics_actions())
    _assert_no_wildcard_actions(statements)


def test_the_forensics_role_scopes_keys_and_bucket(assembly):  # noqa: F811
    config = assembly.config
    statements = {s["Sid"]: s for s in role_statements(role(assembly, names.FORENSICS_STACK,
                                                             names.FORENSICS_ROLE_NAME))}
    declared = set(permissions.forensics_actions())
    s3_actions = {a for a in declared if a.startswith("s3:")}
    kms_actions = {a for a in declared if a.startswith("kms:")}
    assert s3_actions and kms_actions, "the forensics side declares no S3 or KMS action: update this test"
    bucket = statements["EvidenceBucketOfThisAccount"]
    assert set(as_list(bucket["Action"])) == s3_actions
    name = names.evidence_bucket(config.forensics_account, config.region)
    assert sorted(flat(r) for r in bucket["Resource"]) == [f"arn:{P}:s3:::{name}", f"arn:{P}:s3:::{name}/*"]
    assert bucket["Condition"] == {"StringEquals": {"s3:ResourceAccount": config.forensics_account}}
    member_keys = [s for sid, s in statements.items() if sid.startswith("MemberSharingKeys")]
    own_key = [s for sid, s in statements.items() if sid.startswith("ForensicsKey")]
    assert {a for s in member_keys for a in as_list(s["Action"])} == kms_actions
    assert {a for s in own_key for a in as_list(s["Action"])} == kms_actions
    for statement in member_keys:
        assert sorted(flat(r) for r in as_list(statement["Resource"])) == sorted(
            f"arn:{P}:kms:{config.region}:{m}:key/*" for m in set(config.member_accounts))
        assert statement["Condition"]["StringLike"] == {"kms:ViaService": "ec2.*.amazonaws.com"}
    for statement in own_key:
        assert [flat(r) for r in as_list(statement["Resource"])] == [
            flat({"Fn::GetAtt": [next(iter(assembly.resources(names.FORENSICS_STACK, "AWS::KMS::Key"))), "Arn"]})]


def test_the_forensics_role_trusts_only_the_responders_roles_with_the_external_id(assembly):  # noqa: F811
    _assert_trusts_only_the_responder(role(assembly, names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME), assembly)


def test_the_forensics_key_policy_names_no_principal_outside_the_forensics_account(assembly):  # noqa: F811
    account = assembly.config.forensics_account
    (key,) = assembly.resources(names.FORENSICS_STACK, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principals = statement["Principal"]
        assert set(principals) == {"AWS"}, "no service or anonymous principal"
        for principal in as_list(principals["AWS"]):
            assert flat(principal) == f"arn:{P}:iam::{account}:root"
        assert "NotPrincipal" not in statement


def test_no_production_account_is_named_by_the_forensics_key(multi):  # noqa: F811
    # multi-account layout only: in the single-account layout production and forensics are one account by choice
    assert not multi.config.single_account and multi.config.member_accounts
    text = flat(multi.resources(names.FORENSICS_STACK, "AWS::KMS::Key"))
    for member in multi.config.member_accounts:
        assert member not in text


# ---------------------------------------------------------------------------------------------------------------
# Responder functions
# ---------------------------------------------------------------------------------------------------------------
def test_the_function_roles_grant_exactly_assume_role_and_the_declared_responder_actions(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    declared = set(permissions.responder_actions())
    expected = {"sts:AssumeRole"} | declared | policies.function_extra_actions(declared)
    assert policies.function_extra_actions(declared) <= set(policies.LOG_ACTIONS) | set(policies.TOPIC_KEY_ACTIONS)
    for spec in FUNCTIONS:
        statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(spec)))
        assert allowed_actions(statements) == expected
        _assert_no_wildcard_actions(statements)


def test_the_functions_may_assume_only_the_member_and_forensics_roles(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    config = assembly.config
    expected = sorted({f"arn:{P}:iam::{a}:role/{names.MEMBER_ROLE_NAME}" for a in config.member_accounts}
                      | {f"arn:{P}:iam::{config.forensics_account}:role/{names.FORENSICS_ROLE_NAME}"})
    for spec in FUNCTIONS:
        statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(spec)))
        (assume,) = [s for s in statements if "sts:AssumeRole" in as_list(s["Action"])]
        assert as_list(assume["Action"]) == ["sts:AssumeRole"]
        assert sorted(flat(r) for r in as_list(assume["Resource"])) == expected


def test_the_responder_actions_touch_only_the_responders_own_resources(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    owned = ("<IncidentsTable", "<NotificationsTopic", "<FunctionsTriageLogs")
    statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(FUNCTIONS[0])))
    for statement in statements:
        if "sts:AssumeRole" in as_list(statement["Action"]):
            continue
        for resource in as_list(statement["Resource"]):
            text = flat(resource)
            assert text.startswith(owned) or text == policies.executions_arn(
                P, assembly.config.region, assembly.config.security_account, "ir-responder-containment"), text
