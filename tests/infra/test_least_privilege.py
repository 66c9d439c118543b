"""Least privilege, proven on the synthesized templates of both layouts: every role grants exactly the actions the
code declares next to the calls (`responder.permissions`, read now, not copied here; per function from its task,
`stacks.tasks`), no wildcard action, resources scoped where IAM allows it; the member and forensics roles trusted
by the exact function roles that need them, with the external id; the forensics key usable only by the forensics
account, the sharing keys by the forensics account only through EC2."""
from __future__ import annotations

import pytest

from responder import permissions, settings
from stacks import names, policies, tasks
from tests.worlds.infra import allowed_actions, as_list, assembly, flat, multi, role, role_statements  # noqa: F401

P = "<AWS::Partition>"


def _assert_no_wildcard_actions(statements: list[dict]) -> None:
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert not [a for a in as_list(statement["Action"]) if "*" in a or "?" in a], statement


def _assert_trusts_only_the_responder(role_resource: dict, assembly, specs) -> None:  # noqa: F811
    config = assembly.config
    (statement,) = role_resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert {k: flat(v) for k, v in statement["Principal"].items()} == {
        "AWS": f"arn:{P}:iam::{config.security_account}:root"}
    assert set(statement["Condition"]) == {"ArnEquals", "StringEquals"}
    principals = [flat(a) for a in as_list(statement["Condition"]["ArnEquals"]["aws:PrincipalArn"])]
    assert sorted(principals) == sorted(
        f"arn:{P}:iam::{config.security_account}:role/{names.function_role_name(s)}" for s in specs)
    assert not [a for a in principals if "*" in a], "exact ARNs, no pattern"
    assert statement["Condition"]["StringEquals"] == {"sts:ExternalId": config.external_id}


def test_the_names_the_stacks_use_are_the_ones_the_code_expects():
    assert names.MEMBER_ROLE_NAME == settings.MEMBER_ROLE_NAME
    assert names.FORENSICS_ROLE_NAME == settings.FORENSICS_ROLE_NAME
    assert names.SIGNER_ROLE_NAME == settings.SIGNER_ROLE_NAME
    assert names.SHARING_KEY_ALIAS == settings.SHARING_KEY_ALIAS
    assert names.DENY_ALL_PROFILE == settings.DENY_ALL_PROFILE
    assert names.DENY_ALL_ROLE_NAME == settings.DENY_ALL_ROLE_NAME
    for name in (names.MEMBER_ROLE_NAME, names.FORENSICS_ROLE_NAME, names.SIGNER_ROLE_NAME,
                 names.STATE_MACHINE_ROLE_NAME, names.DENY_ALL_ROLE_NAME):
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
        denies = {s["Sid"] for s in statements if s["Effect"] == "Deny"}
        assert {"NeverChangeTheRespondersIdentities", "NeverChangeManagedPolicies"} <= denies
        assert "NeverChangeProtectedPrincipals" not in denies  # a tag is a claim the code checks (issue 10)
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
            if statement["Effect"] == "Deny":
                continue
            for resource in as_list(statement["Resource"]):
                text = flat(resource)
                collected = "aws:ResourceTag/ir:collected-by" in statement.get("Condition", {}).get("StringLike", {})
                assert text == "*" or text.startswith("<") or f":{account}:" in text or (
                    text == f"arn:{P}:ec2:*::snapshot/*" and collected), (statement["Sid"], text)


def _assert_snapshot_and_key_conditions(statements: list[dict], security_account: str) -> None:
    for statement in statements:
        actions = set(as_list(statement["Action"]))
        if statement["Effect"] == "Deny":
            continue
        if actions & (policies.EVIDENCE_SNAPSHOT_ACTIONS | {"ec2:LockSnapshot"}):
            assert actions <= policies.EVIDENCE_SNAPSHOT_ACTIONS | {"ec2:LockSnapshot"}
            assert {k: flat(v) for k, v in statement["Condition"]["StringLike"].items()} == {
                "aws:ResourceTag/ir:collected-by":
                f"arn:{P}:states:*:{security_account}:execution:ir-responder-containment:*"}
        kms = {a for a in actions if a.startswith("kms:")} - policies.SIGNING_ACTIONS
        assert not actions & policies.SIGNING_ACTIONS, "only the custody signer role signs"
        if kms:
            assert kms == actions, "KMS actions in statements of their own"
            if kms == {"kms:ListKeys"}:  # key ids only; no resource-level permission exists
                assert as_list(statement["Resource"]) == ["*"] and statement["Sid"] == "ListKeys"
            elif kms <= policies.KEY_ADMIN_ACTIONS:  # grants and policies, called directly: this account's keys
                (resource,) = as_list(statement["Resource"])
                assert ":kms:*:" in flat(resource) and flat(resource).endswith(":key/*") and "Condition" not in \
                    statement, statement
            elif kms != {"kms:DescribeKey"}:
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
        _assert_trusts_only_the_responder(resource, assembly, tasks.member_tasks())
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
    assert {"NeverChangeTheRespondersIdentities", "NeverUnlockEvidence"} <= {
        s["Sid"] for s in statements if s["Effect"] == "Deny"}
    _assert_no_wildcard_actions(statements)


def test_the_forensics_role_scopes_keys_and_bucket(assembly):  # noqa: F811
    config = assembly.config
    statements = {s["Sid"]: s for s in role_statements(role(assembly, names.FORENSICS_STACK,
                                                             names.FORENSICS_ROLE_NAME))}
    declared = set(permissions.forensics_actions())
    s3_actions = {a for a in declared if a.startswith("s3:")}
    kms_actions = {a for a in declared if a.startswith("kms:")}
    assert not kms_actions & policies.SIGNING_ACTIONS, "the forensics role writes evidence: it must not sign it"
    assert s3_actions and kms_actions, "the forensics side declares no S3 or KMS action: update this test"
    bucket = statements["EvidenceBucketOfThisAccount"]
    assert set(as_list(bucket["Action"])) == s3_actions - {"s3:GetObject"}
    name = names.evidence_bucket(config.forensics_account, config.region)
    assert sorted(flat(r) for r in bucket["Resource"]) == [f"arn:{P}:s3:::{name}", f"arn:{P}:s3:::{name}/*"]
    assert bucket["Condition"] == {"StringEquals": {"s3:ResourceAccount": config.forensics_account}}
    # reads: only the CloudTrail captures the incident report is built from, and the report read back
    reads = statements["ReadCapturesAndReports"]
    assert as_list(reads["Action"]) == ["s3:GetObject"]
    assert sorted(flat(r) for r in as_list(reads["Resource"])) == [
        f"arn:{P}:s3:::{name}/incidents/*/cloudtrail/*", f"arn:{P}:s3:::{name}/incidents/*/report-*"]
    assert reads["Condition"] == {"StringEquals": {"s3:ResourceAccount": config.forensics_account}}
    assert not [s for s in statements.values() if s["Effect"] == "Allow" and "s3:GetObject" in as_list(s["Action"])
                and s is not reads], "the forensics role reads no other object of the bucket"
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
            flat({"Fn::GetAtt": [_key_id(assembly, "ForensicsKey"), "Arn"]})]
    assert "SignManifestsWithTheCustodyKey" not in statements


def test_the_forensics_role_makes_workstation_volumes_and_launches_only_under_tags(assembly):  # noqa: F811
    """The forensic workstation (responder.workstation): volumes only tagged for analysis from the responder's own
    copies, attached only to tagged workstations, launched only from the account's tagged images, tagged at
    creation only; nothing deletes, detaches or terminates."""
    account = assembly.config.forensics_account
    statements = {s["Sid"]: s for s in role_statements(role(assembly, names.FORENSICS_STACK,
                                                             names.FORENSICS_ROLE_NAME))}
    allowed = allowed_actions(list(statements.values()))
    assert not {"ec2:DeleteVolume", "ec2:DetachVolume", "ec2:TerminateInstances", "ec2:ModifySnapshotAttribute",
                "ec2:AuthorizeSecurityGroupIngress"} & allowed
    by_action = {}
    for sid, statement in statements.items():
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                by_action.setdefault(action, set()).add(sid)
    assert by_action["ec2:CreateVolume"] == {"CreateOnlyAnalysisVolumes", "VolumesOnlyFromTheRespondersCopies"}
    assert by_action["ec2:AttachVolume"] == {"AttachOnlyToForensicWorkstations", "AttachOnlyAnalysisVolumes"}
    assert by_action["ec2:RunInstances"] == {"LaunchOnlyFromForensicImages", "LaunchOnlyTaggedWorkstations",
                                             "LaunchIntoThisAccountsNetwork"}
    create = statements["CreateOnlyAnalysisVolumes"]
    assert [flat(r) for r in as_list(create["Resource"])] == [f"arn:{P}:ec2:*:{account}:volume/*"]
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/ir:purpose": "forensic-analysis"},
                                   "Null": {"aws:RequestTag/ir:incident": "false"}}
    assert "aws:ResourceTag/ir:collected-by" in flat(statements["VolumesOnlyFromTheRespondersCopies"]["Condition"])
    assert statements["AttachOnlyToForensicWorkstations"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/ir:purpose": "forensic-workstation"}}
    assert statements["LaunchOnlyFromForensicImages"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/ir:purpose": "forensic-workstation", "ec2:Owner": account}}
    assert statements["LaunchOnlyTaggedWorkstations"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/ir:purpose": "forensic-workstation"}}
    at_creation = statements["TagOnlyWhatTheResponderCreates"]["Condition"]["StringEquals"]["ec2:CreateAction"]
    assert {"CreateVolume", "RunInstances"} <= set(as_list(at_creation))


def test_the_custody_signer_role_may_only_sign_with_the_custody_key(assembly):  # noqa: F811
    statements = role_statements(role(assembly, names.FORENSICS_STACK, names.SIGNER_ROLE_NAME))
    assert allowed_actions(statements) == set(permissions.signer_actions()) == {"kms:Sign"}
    (sign,) = [s for s in statements if s["Effect"] == "Allow"]
    assert sign["Sid"] == "SignManifestsWithTheCustodyKey" and as_list(sign["Action"]) == ["kms:Sign"]
    assert [flat(r) for r in as_list(sign["Resource"])] == [flat({"Fn::GetAtt": [_key_id(assembly, "CustodyKey"),
                                                                                "Arn"]})]
    assert sign["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256",
                                                  "kms:MessageType": "DIGEST"}}
    assert "NeverChangeTheRespondersIdentities" in {s["Sid"] for s in statements if s["Effect"] == "Deny"}


def test_the_custody_signer_role_trusts_only_finalize_with_the_external_id(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    assert [s.key for s in tasks.signer_tasks()] == ["Finalize"]
    resource = role(assembly, names.FORENSICS_STACK, names.SIGNER_ROLE_NAME)
    _assert_trusts_only_the_responder(resource, assembly, tasks.signer_tasks())
    assert {"Key": "ir:protected", "Value": "true"} in resource["Properties"]["Tags"]
    assert names.function_role_name(next(s for s in FUNCTIONS if s.key == "Finalize")) in flat(
        resource["Properties"]["AssumeRolePolicyDocument"])


def test_the_custody_key_lets_only_the_signer_role_sign(assembly):  # noqa: F811
    account = assembly.config.forensics_account
    signer = f"arn:{P}:iam::{account}:role/{names.SIGNER_ROLE_NAME}"
    policy = assembly.resources(names.FORENSICS_STACK, "AWS::KMS::Key")[_key_id(assembly, "CustodyKey")][
        "Properties"]["KeyPolicy"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    signing = [s for s in policy["Statement"] if "kms:Sign" in as_list(s["Action"]) or "kms:*" in as_list(s["Action"])]
    assert {s["Sid"] for s in signing} == {"OnlyTheCustodySignerSigns", "NobodyElseSigns"}
    allow, deny = statements["OnlyTheCustodySignerSigns"], statements["NobodyElseSigns"]
    assert allow["Effect"] == "Allow" and flat(allow["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == signer
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert flat(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == signer
    forensics = f"arn:{P}:iam::{account}:role/{names.FORENSICS_ROLE_NAME}"
    assert forensics not in flat(policy), "the role that writes the evidence is not named by the signing key"


def _key_id(assembly, prefix: str) -> str:  # noqa: F811
    (found,) = [k for k in assembly.resources(names.FORENSICS_STACK, "AWS::KMS::Key") if k.startswith(prefix)]
    return found


def test_the_forensics_role_trusts_only_the_responders_roles_with_the_external_id(assembly):  # noqa: F811
    _assert_trusts_only_the_responder(role(assembly, names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME), assembly,
                                      tasks.forensics_tasks())


def test_the_forensics_key_policy_names_no_principal_outside_the_forensics_account(assembly):  # noqa: F811
    account = assembly.config.forensics_account
    keys = assembly.resources(names.FORENSICS_STACK, "AWS::KMS::Key")
    assert keys[_key_id(assembly, "ForensicsKey")]["Properties"]["EnableKeyRotation"] is True
    custody = keys[_key_id(assembly, "CustodyKey")]["Properties"]
    assert (custody["KeySpec"], custody["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    for key in keys.values():
        for statement in key["Properties"]["KeyPolicy"]["Statement"]:
            principals = statement["Principal"]
            assert set(principals) == {"AWS"}, "no service principal"
            assert "NotPrincipal" not in statement
            if statement["Effect"] == "Deny":  # the custody key: nobody but the custody signer role signs
                assert principals == {"AWS": "*"} and statement["Action"] == "kms:Sign"
                continue
            for principal in as_list(principals["AWS"]):
                assert flat(principal) == f"arn:{P}:iam::{account}:root"


def test_no_production_account_is_named_by_the_forensics_key(multi):  # noqa: F811
    # multi-account layout only: in the single-account layout production and forensics are one account by choice
    assert not multi.config.single_account and multi.config.member_accounts
    text = flat(multi.resources(names.FORENSICS_STACK, "AWS::KMS::Key"))
    for member in multi.config.member_accounts:
        assert member not in text


# ---------------------------------------------------------------------------------------------------------------
# Responder functions
# ---------------------------------------------------------------------------------------------------------------
def test_each_function_role_grants_exactly_what_its_task_declares(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    for spec in FUNCTIONS:
        access = tasks.task_access(spec)
        declared = set(access.responder_actions)
        assume = {"sts:AssumeRole"} if access.member or access.member_read or access.member_release or access.forensics or access.signer else set()
        statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(spec)))
        assert allowed_actions(statements) == assume | declared | policies.function_extra_actions(declared), spec.key
        _assert_no_wildcard_actions(statements)


def test_only_the_tasks_that_act_there_may_assume_the_member_and_forensics_roles(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    config = assembly.config
    members = {f"arn:{P}:iam::{a}:role/{names.MEMBER_ROLE_NAME}" for a in config.member_accounts}
    readers = {f"arn:{P}:iam::{a}:role/{names.MEMBER_READ_ROLE_NAME}" for a in config.member_accounts}
    releasers = {f"arn:{P}:iam::{a}:role/{names.MEMBER_RELEASE_ROLE_NAME}" for a in config.member_accounts}
    forensics = {f"arn:{P}:iam::{config.forensics_account}:role/{names.FORENSICS_ROLE_NAME}"}
    signer = {f"arn:{P}:iam::{config.forensics_account}:role/{names.SIGNER_ROLE_NAME}"}
    # Triage reads an attack sequence's Auto Scaling groups in the member account (DescribeAutoScalingGroups,
    # responder.signals_groups) through the read-only twin of the member role, never the member role (issue 12:
    # Triage and Finalize assume no member role); Finalize signs through the custody signer role; RequestApproval
    # only publishes the approval request
    expected = {"Triage": readers, "RequestApproval": set(), "Finalize": forensics | signer,
                "ContainIdentities": members | forensics, "IsolateInstance": members | forensics,
                "CollectEvidence": members | forensics,
                # the forensic workstation: volumes and instances in the forensics account, the live-response rule
                # on the quarantine group in the member account (responder.workstation)
                "AnalyzeEvidence": members | forensics,
                "Release": releasers}  # the release twin only: never the member role (responder.release)
    assert set(expected) == {spec.key for spec in FUNCTIONS}
    for spec in FUNCTIONS:
        statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(spec)))
        assumable = {flat(r) for s in statements if "sts:AssumeRole" in as_list(s["Action"])
                     for r in as_list(s["Resource"])}
        assert assumable == expected[spec.key], spec.key
        for statement in statements:
            if "sts:AssumeRole" in as_list(statement["Action"]):
                assert as_list(statement["Action"]) == ["sts:AssumeRole"]


def test_the_responder_actions_touch_only_the_responders_own_resources(assembly):  # noqa: F811
    from stacks.catalog import FUNCTIONS

    for spec in FUNCTIONS:
        owned = ("<IncidentsTable", "<NotificationsTopic", f"<Functions{spec.key}Logs")
        if spec.key == "Release":  # restored console passwords: secrets of the responder's account, its prefix only
            owned += (f"arn:<AWS::Partition>:secretsmanager:{assembly.config.region}:"
                      f"{assembly.config.security_account}:secret:ir-responder/release/*",)
        statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(spec)))
        for statement in statements:
            if "sts:AssumeRole" in as_list(statement["Action"]):
                continue
            for resource in as_list(statement["Resource"]):
                text = flat(resource)
                assert text.startswith(owned) or text == policies.executions_arn(
                    P, assembly.config.region, assembly.config.security_account, "ir-responder-containment"), text


def test_only_the_release_function_writes_secrets_and_only_under_its_prefix(assembly):  # noqa: F811
    """restoreConsoleAccess: the new password goes into a secret of the responder's account; the Release function
    may create, update and tag secrets named ir-responder/release/... and nothing else of Secrets Manager; no other
    function holds any Secrets Manager action."""
    from stacks.catalog import FUNCTIONS

    for spec in FUNCTIONS:
        statements = role_statements(role(assembly, names.RESPONDER_STACK, names.function_role_name(spec)))
        ours = [s for s in statements if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
        if spec.key != "Release":
            assert not ours, spec.key
            continue
        assert len(ours) == 1 and set(as_list(ours[0]["Action"])) == {
            "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:TagResource"}
        assert [flat(r) for r in as_list(ours[0]["Resource"])] == [
            f"arn:<AWS::Partition>:secretsmanager:{assembly.config.region}:{assembly.config.security_account}:"
            "secret:ir-responder/release/*"]


def test_the_read_only_member_role_reads_and_trusts_triage_alone(assembly):  # noqa: F811
    """Triage's reads in a member account go through a role that can change nothing, and only Triage may assume it;
    the member role itself does not trust Triage."""
    from responder import permissions
    from stacks.catalog import FUNCTIONS

    triage_arn = names.role_arn(P, assembly.config.security_account,
                                names.function_role_name(next(s for s in FUNCTIONS if s.key == "Triage")))
    for stack in assembly.member_stacks:
        read = role(assembly, stack, names.MEMBER_READ_ROLE_NAME)
        statements = role_statements(read)
        assert allowed_actions(statements) == set(permissions.member_read_actions()) == {
            "autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances"}
        assert all(a.split(":", 1)[1].startswith("Describe") for s in statements for a in as_list(s["Action"]))
        trust = read["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert len(trust) == 1
        assert [flat(a) for a in as_list(trust[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"])] == [triage_arn]
        assert trust[0]["Condition"]["StringEquals"]["sts:ExternalId"] == assembly.config.external_id
        member_trust = role(assembly, stack, names.MEMBER_ROLE_NAME)["Properties"]["AssumeRolePolicyDocument"]
        trusted = {flat(a) for s in member_trust["Statement"]
                   for a in as_list(s["Condition"]["ArnEquals"]["aws:PrincipalArn"])}
        assert trusted and triage_arn not in trusted


USER_UNDO = {"iam:GetUser", "iam:ListAttachedUserPolicies", "iam:ListAccessKeys", "iam:GetUserPolicy",
             "iam:DetachUserPolicy", "iam:UpdateAccessKey", "iam:DeleteUserPolicy",
             "iam:GetLoginProfile", "iam:CreateLoginProfile"}  # restoreConsoleAccess
INSTANCE_UNDO = {"ec2:DescribeInstances", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeNetworkAcls",
                 "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetHealth",
                 "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups",
                 "iam:GetInstanceProfile", "ec2:ModifyNetworkInterfaceAttribute",
                 "ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole", "ec2:DeleteNetworkAclEntry",
                 "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
                 "autoscaling:AttachInstances"}
# {undo action: (what each resource names, the condition key that narrows it)} (stacks.policies._release_scopes)
INSTANCE_SCOPES = {
    "iam:GetInstanceProfile": ((":instance-profile/",), None),
    "ec2:ModifyNetworkInterfaceAttribute": ((":network-interface/", ":security-group/"), None),
    "ec2:ReplaceIamInstanceProfileAssociation": ((":instance/",), "aws:ResourceTag/ir:incident"),
    "iam:PassRole": ((":role/",), "iam:PassedToService"),
    "ec2:DeleteNetworkAclEntry": ((":network-acl/",), None),
    "elasticloadbalancing:RegisterTargets": ((":targetgroup/",), None),
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer": ((":loadbalancer/",), None),
    "autoscaling:AttachInstances": ((":autoScalingGroup:",), None),
}


def test_the_release_role_holds_only_the_undo_calls_and_trusts_the_release_function_alone(assembly):  # noqa: F811
    """A release undoes containment through a role of its own: reads of users, UpdateAccessKey, DeleteUserPolicy and
    DetachUserPolicy of exactly the quarantine policy; trusted only by the Release function's role. The member role
    gains none of the undo actions and does not trust the Release function."""
    from responder import permissions
    from stacks.catalog import FUNCTIONS

    release_arn = names.role_arn(P, assembly.config.security_account,
                                 names.function_role_name(next(s for s in FUNCTIONS if s.key == "Release")))
    for stack in assembly.member_stacks:
        released = role(assembly, stack, names.MEMBER_RELEASE_ROLE_NAME)
        statements = role_statements(released)
        assert allowed_actions(statements) == set(permissions.member_release_actions()) == USER_UNDO | INSTANCE_UNDO
        for statement in statements:
            if statement["Effect"] != "Allow":
                continue
            actions = as_list(statement["Action"])
            resources = [flat(r) for r in as_list(statement["Resource"])]
            if set(actions) <= USER_UNDO:
                assert all(":user/" in r for r in resources), statement
            if "iam:DetachUserPolicy" in actions:
                assert actions == ["iam:DetachUserPolicy"]
                assert "iam:PolicyARN" in statement["Condition"]["ArnEquals"]
            if resources == ["*"]:  # only reads on "*"
                assert all(a.split(":", 1)[1].startswith("Describe") for a in actions), statement
            for action, (fragment, condition) in INSTANCE_SCOPES.items():
                if action in actions:
                    assert actions == [action], statement
                    assert resources and all(any(f in r for f in fragment) for r in resources), statement
                    if condition:
                        assert flat(statement["Condition"]).count(condition) == 1, statement
        # PassRole: the original profile's role, to EC2 only, never one of the responder's own roles
        denied = {flat(r).rsplit("/", 1)[-1] for s in statements if s["Effect"] == "Deny"
                  and as_list(s["Action"]) == ["iam:PassRole"] for r in as_list(s["Resource"])}
        assert {names.MEMBER_ROLE_NAME, names.MEMBER_RELEASE_ROLE_NAME, names.FORENSICS_ROLE_NAME} <= denied
        trust = released["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert len(trust) == 1
        assert [flat(a) for a in as_list(trust[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"])] == [release_arn]
        member = role(assembly, stack, names.MEMBER_ROLE_NAME)
        member_actions = allowed_actions(role_statements(member))
        assert not {"iam:DetachUserPolicy", "iam:DeleteUserPolicy", "iam:DeleteRolePolicy"} & member_actions
        trusted = {flat(a) for s in member["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                   for a in as_list(s["Condition"]["ArnEquals"]["aws:PrincipalArn"])}
        assert release_arn not in trusted


def test_the_release_role_takes_only_iam_user_actions():
    with pytest.raises(policies.UnscopedAction, match="ec2:ModifyInstanceAttribute"):
        policies.member_release_policy(partition="aws", account="111122223333",
                                       actions=["iam:UpdateAccessKey", "ec2:ModifyInstanceAttribute"],
                                       quarantine_policy_arn="arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2")
    assert f"arn:aws:iam::111122223333:role/{names.MEMBER_RELEASE_ROLE_NAME}" in policies.guarded_resources(
        "aws", "111122223333")


def test_the_read_only_role_takes_no_write():
    with pytest.raises(policies.UnscopedAction, match="ec2:ModifyInstanceAttribute"):
        policies.member_read_policy(["ec2:DescribeInstances", "ec2:ModifyInstanceAttribute"])


def test_the_member_role_cannot_change_its_read_only_twin():
    guarded = policies.guarded_resources("aws", "111122223333")
    assert f"arn:aws:iam::111122223333:role/{names.MEMBER_READ_ROLE_NAME}" in guarded


def test_the_member_role_revokes_grants_only_on_its_own_accounts_keys(assembly):  # noqa: F811
    """The pivots' RevokeGrant and the rotation list's key reads (responder.pivots, responder.rotation): called
    directly, so scoped to the member account's own keys; the listing actions that support no resource-level
    permission are alone in their statements."""
    for account in assembly.config.member_accounts:
        statements = role_statements(role(assembly, names.member_stack(account), names.MEMBER_ROLE_NAME))
        allowed = [s for s in statements if s["Effect"] == "Allow"]
        (keys,) = [s for s in allowed if "kms:RevokeGrant" in as_list(s["Action"])]
        assert set(as_list(keys["Action"])) == policies.KEY_ADMIN_ACTIONS
        assert [flat(r) for r in as_list(keys["Resource"])] == [f"arn:{P}:kms:*:{account}:key/*"]
        listed = {a for s in allowed if as_list(s["Resource"]) == ["*"] for a in as_list(s["Action"])}
        assert {"iam:ListRoles", "kms:ListKeys"} <= listed
        assert not listed & policies.KEY_ADMIN_ACTIONS
