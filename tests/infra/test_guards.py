"""Issue 12 on the synthesized templates: no self-escalation (explicit denies on the responder's own identities),
EC2 writes scoped by tags and ec2:CreateAction, sharing pinned to the forensics account, service trusts with
aws:SourceAccount / aws:SourceArn, the evidence bucket policy, the custody key, and the IAM watch rules (their
patterns matched against CloudTrail events with EventBridge's own matcher as moto implements it)."""
from __future__ import annotations

from fnmatch import fnmatchcase

from stacks import names
from stacks.catalog import SIGNAL_PATTERNS
from tests.worlds.infra import as_list, assembly, flat, multi, role, role_statements  # noqa: F401

P = "<AWS::Partition>"


def _denied(statements: list[dict], action: str, resource: str) -> list[str]:
    """Sids of the unconditional Deny statements that match `action` on `resource`."""
    return [s["Sid"] for s in statements if s["Effect"] == "Deny" and "Condition" not in s
            and any(fnmatchcase(action, a) for a in as_list(s["Action"]))
            and any(fnmatchcase(resource, flat(r)) for r in as_list(s["Resource"]))]


SELF_CHANGES = ("iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
                "iam:TagRole", "iam:UntagRole", "iam:DeleteRole", "iam:UpdateRole")


def test_the_member_and_forensics_roles_cannot_change_themselves_or_the_responder(assembly):  # noqa: F811
    config = assembly.config
    cases = [(s, names.MEMBER_ROLE_NAME, s.rsplit("-", 1)[1]) for s in assembly.member_stacks]
    cases.append((names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME, config.forensics_account))
    for stack, name, account in cases:
        statements = role_statements(role(assembly, stack, name))
        guarded = [names.MEMBER_ROLE_NAME, names.FORENSICS_ROLE_NAME, names.DENY_ALL_ROLE_NAME,
                   names.STATE_MACHINE_ROLE_NAME, names.RULE_ROLE_NAME, "ir-responder-Triage-role"]
        for target in guarded:
            arn = f"arn:{P}:iam::{account}:role/{target}"
            for action in SELF_CHANGES:
                assert _denied(statements, action, arn), (name, action, target)
        profile = f"arn:{P}:iam::{account}:instance-profile/{names.DENY_ALL_PROFILE}"
        assert _denied(statements, "iam:RemoveRoleFromInstanceProfile", profile)
        assert _denied(statements, "iam:CreatePolicyVersion", f"arn:{P}:iam::{account}:policy/Quarantine")
        # issue 10: no name prefix and no tag buys immunity - an attacker's ir-responder-backdoor role, or a principal
        # that tagged itself protected, must stay containable (the code checks tags in CloudTrail)
        assert not any(s["Sid"] == "NeverChangeProtectedPrincipals" for s in statements)
        assert not _denied(statements, "iam:PutRolePolicy", f"arn:{P}:iam::{account}:role/ir-responder-backdoor")
        assert not any("aws:ResourceTag/" + config.protected_tag in str(s.get("Condition")) for s in statements
                       if s["Effect"] == "Deny" and "iam:PutUserPolicy" in str(s["Action"]))
        # what the member role must still do is not denied: revoke another role's sessions, quarantine a user
        assert not _denied(statements, "iam:PutRolePolicy", f"arn:{P}:iam::{account}:role/app-role")
        assert not _denied(statements, "iam:PutUserPolicy", f"arn:{P}:iam::{account}:user/svc-build")
    forensics = role_statements(role(assembly, names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME))
    assert _denied(forensics, "ec2:UnlockSnapshot", "arn:aws:ec2:eu-west-1::snapshot/snap-1")


def test_no_role_can_tag_a_snapshot_into_scope_or_share_it_elsewhere(assembly):  # noqa: F811
    config = assembly.config
    for stack, name in [(s, names.MEMBER_ROLE_NAME) for s in assembly.member_stacks] + [
            (names.FORENSICS_STACK, names.FORENSICS_ROLE_NAME)]:
        by_sid = {s["Sid"]: s for s in role_statements(role(assembly, stack, name))}
        tagging = [s for s in by_sid.values() if s["Effect"] == "Allow" and "ec2:CreateTags" in as_list(s["Action"])]
        for statement in tagging:
            condition = statement["Condition"]
            if statement["Sid"] == "TagOnlyWhatTheResponderCreates":
                assert set(condition["StringEquals"]["ec2:CreateAction"]) >= {"CopySnapshot"}
            else:  # afterwards: never ir:collected-by, never the protection tag
                keys = condition["ForAllValues:StringEquals"]["aws:TagKeys"]
                assert "ir:collected-by" not in keys and config.protected_tag not in keys and keys
        if name == names.MEMBER_ROLE_NAME:
            share = by_sid["ShareOnlyTheRespondersSnapshotsWithForensics"]
            assert share["Condition"]["ForAllValues:StringEquals"] == {"ec2:Add/userId": [config.forensics_account]}
            assert by_sid["NeverShareWithAGroup"]["Condition"] == {"Null": {"ec2:Add/group": "false"}}
            assert by_sid["NeverShareWithAnotherAccount"]["Effect"] == "Deny"
            rules = by_sid["OnlyTheRespondersSecurityGroupRules"]
            assert rules["Condition"] == {"StringEquals": {"aws:ResourceTag/ir:purpose": ["quarantine",
                                                                                          "untrack-flows"]}}
            assert by_sid["PassOnlyTheDenyAllRole"]["Condition"] == {
                "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_service_roles_trust_their_service_for_this_account_only(assembly):  # noqa: F811
    account, region = assembly.config.security_account, assembly.config.region
    expected = {
        names.STATE_MACHINE_ROLE_NAME: f"arn:{P}:states:{region}:{account}:stateMachine:ir-responder-containment",
        names.RULE_ROLE_NAME: [f"arn:{P}:events:{region}:{account}:rule/{name}"
                               for name in (names.RULE_NAME, *map(names.signal_rule, SIGNAL_PATTERNS))],
    }
    for resource in assembly.resources(names.RESPONDER_STACK, "AWS::IAM::Role").values():
        (trust,) = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        name = resource["Properties"]["RoleName"]
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": account}, name
        if name in expected:
            found = trust["Condition"]["ArnLike"]["aws:SourceArn"]
            assert ([flat(a) for a in found] if isinstance(found, list) else flat(found)) == expected[name]
    (key,) = [k for k in assembly.resources(names.RESPONDER_STACK, "AWS::KMS::Key").values()]
    service = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    assert service and all(s["Condition"]["StringEquals"] == {"aws:SourceAccount": account} for s in service)


def test_the_evidence_bucket_policy(multi):  # noqa: F811
    config = multi.config
    bucket = names.evidence_bucket(config.forensics_account, config.region)
    (policy,) = [p for p in multi.resources(names.FORENSICS_STACK, "AWS::S3::BucketPolicy").values()
                 if flat(p["Properties"]["Bucket"]) == bucket or "Evidence" in str(p["Properties"]["Bucket"])
                 and "AccessLogs" not in str(p["Properties"]["Bucket"])]
    by_sid = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    writer = f"arn:{P}:iam::{config.forensics_account}:role/{names.FORENSICS_ROLE_NAME}"
    custodian = f"arn:{P}:iam::{config.forensics_account}:role/ir-evidence-custodian"
    only = by_sid["OnlyTheForensicsRoleWrites"]
    assert (only["Effect"], only["Action"]) == ("Deny", "s3:PutObject")
    assert flat(only["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == writer
    key = by_sid["OnlyUnderTheForensicsKey"]["Condition"]
    assert key["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}
    assert "ForensicsKey" in str(key["StringNotEquals"])
    nobody = by_sid["NoDeletionOrBypassButTheCustodian"]
    assert set(nobody["Action"]) >= {"s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:DeleteObject",
                                     "s3:PutObjectRetention"}
    assert flat(nobody["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == custodian
    assert flat(by_sid["NoLockChangeButTheCustodian"]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == custodian


def test_the_custody_key_signs_only_for_the_forensics_role(multi):  # noqa: F811
    config = multi.config
    (key,) = [k for lid, k in multi.resources(names.FORENSICS_STACK, "AWS::KMS::Key").items()
              if lid.startswith("CustodyKey")]
    by_sid = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    writer = f"arn:{P}:iam::{config.forensics_account}:role/{names.FORENSICS_ROLE_NAME}"
    assert flat(by_sid["OnlyTheForensicsRoleSigns"]["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == writer
    nobody = by_sid["NobodyElseSigns"]
    assert (nobody["Effect"], nobody["Action"], nobody["Principal"]) == ("Deny", "kms:Sign", {"AWS": "*"})
    assert "kms:Sign" not in as_list(by_sid["ThisAccountAdministersThroughIam"]["Action"])


def _watch_events(member_role_arn: str) -> dict[str, dict]:
    def event(name: str, **params) -> dict:
        return {"source": "aws.iam", "detail-type": "AWS API Call via CloudTrail", "detail": {
            "eventName": name, "readOnly": False, "requestParameters": params,
            "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": member_role_arn}}}}}
    return {
        "revoke sessions (ours)": event("PutRolePolicy", roleName="app", policyName="AWSRevokeOlderSessions"),
        "backdoor inline policy": event("PutRolePolicy", roleName="app", policyName="Backdoor"),
        "backdoor user policy": event("PutUserPolicy", userName="u", policyName="admin"),
        "deactivate a key (ours)": event("UpdateAccessKey", userName="u", status="Inactive"),
        "delete a role policy (denied attempt)": event("DeleteRolePolicy", roleName="ir-responder-member"),
        "create an access key": event("CreateAccessKey", userName="u"),
    }


def test_the_iam_watch_reports_what_the_responder_never_does(multi):  # noqa: F811
    from moto.events.models import EventPattern

    account = multi.config.member_accounts[0]
    rules = multi.resources(names.member_watch_stack(account), "AWS::Events::Rule").values()
    arn = f"arn:aws:iam::{account}:role/{names.MEMBER_ROLE_NAME}"
    patterns = []
    for rule in rules:
        pattern = rule["Properties"]["EventPattern"]
        issuer = pattern["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]
        issuer["arn"] = [flat(a).replace(P, "aws") for a in issuer["arn"]]
        patterns.append(EventPattern.load(__import__("json").dumps(pattern)))
    matched = {what for what, event in _watch_events(arn).items() if any(p.matches_event(event) for p in patterns)}
    assert matched == {"backdoor inline policy", "backdoor user policy", "delete a role policy (denied attempt)",
                       "create an access key"}
    another = _watch_events(f"arn:aws:iam::{account}:role/someone-else")["backdoor inline policy"]
    assert not any(p.matches_event(another) for p in patterns)
    (topic,) = multi.resources(names.member_watch_stack(account), "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    (policy,) = multi.resources(names.member_watch_stack(account), "AWS::SNS::TopicPolicy").values()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Effect"] == "Allow":  # EventBridge for the watch rules only (no unconditioned grant)
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert len(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == 2
