"""IAM and KMS policy documents of the three stacks, as plain JSON dicts.

Dependency-free (no CDK import): the CDK constructs turn these dicts into the templates' policies
(`iam.PolicyDocument.from_json`), and the local runtime (`state_machines.local_stacks`) puts the very same
documents on the roles and keys it creates. The IAM actions come from `responder.permissions` (declared next to
the code that calls them); this module only decides each action's resource scope:

* no wildcard actions, ever (`_check_actions`);
* an action is scoped to the resources it can touch where IAM supports it (the deny-all role for `iam:PassRole`,
  the quarantine policy for `iam:AttachUserPolicy`, users / roles / instance profiles for IAM actions, the
  forensics key and the members' sharing keys for KMS, the evidence bucket for S3, the responder's own table, topic
  and log group for the functions);
* every other member / forensics action applies to the whole account (`Resource: *`): the responder must act on
  whichever instance, volume or snapshot a finding names, and many of those actions (EC2 Describe*, EBS direct
  APIs' listing) support no resource-level permission. The trust policies limit who can use them.

`partition` may be a CDK token (`Aws.PARTITION`) or plain text (`aws`).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from stacks import names
from stacks.catalog import FUNCTIONS, STATE_MACHINE_NAME

VERSION = "2012-10-17"
EC2_SERVICE = "ec2.*.amazonaws.com"  # kms:ViaService, any region: the roles are global, keys regional
S3_SERVICE = "s3.*.amazonaws.com"
# The EBS direct APIs (ListSnapshotBlocks, for the block-list hash) may use a snapshot's key through EBS.
EBS_SERVICE = "ebs.*.amazonaws.com"
COLLECTED_BY_TAG = "ir:collected-by"  # evidence tag: the ARN of the execution that collected it (runbook schema)
# KMS actions that may be called directly (not through a service): reading a key's metadata, resolving an alias.
DIRECT_KMS_ACTIONS = frozenset({"kms:DescribeKey"})
# Destructive or exposing snapshot actions: only on snapshots the responder collected (tag ir:collected-by).
EVIDENCE_SNAPSHOT_ACTIONS = frozenset({"ec2:DeleteSnapshot", "ec2:ModifySnapshotAttribute"})

# IAM actions whose resource is a user / a role / an instance profile (Service Authorization Reference).
IAM_USER_ACTIONS = frozenset({
    "iam:GetUser", "iam:ListUserTags", "iam:ListAttachedUserPolicies", "iam:ListAccessKeys", "iam:GetUserPolicy",
    "iam:ListUserPolicies", "iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:GetLoginProfile",
    "iam:ListMFADevices", "iam:ListGroupsForUser", "iam:ListSSHPublicKeys", "iam:ListSigningCertificates",
    "iam:ListServiceSpecificCredentials", "iam:TagUser", "iam:GetAccessKeyLastUsed",
    # not granted unless an adapter declares them; listed so their resource type (user) is known
    "iam:DeleteLoginProfile", "iam:UpdateLoginProfile", "iam:DeactivateMFADevice", "iam:UpdateSSHPublicKey",
    "iam:UpdateSigningCertificate", "iam:UpdateServiceSpecificCredential", "iam:ListUserTags",
    "iam:DeleteUserPolicy", "iam:CreateLoginProfile",  # the release role only (member_release_policy)
})
IAM_ROLE_ACTIONS = frozenset({
    "iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:ListRoleTags", "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:TagRole",
})
IAM_INSTANCE_PROFILE_ACTIONS = frozenset({"iam:GetInstanceProfile"})
# IAM / KMS listing actions that support no resource-level permission (Service Authorization Reference: no resource
# type): granted on "*".
ACCOUNT_LIST_ACTIONS = frozenset({"iam:ListRoles", "kms:ListKeys"})
# KMS actions called directly on the member account's own keys (responder.pivots, responder.rotation): the key's
# policy must still allow them ("Required permissions: kms:RevokeGrant (key policy)"), so a key that does not
# delegate to IAM refuses and the responder records a manual step.
KEY_ADMIN_ACTIONS = frozenset({"kms:GetKeyPolicy", "kms:ListGrants", "kms:RevokeGrant"})

# What a Lambda function needs to write its logs into its own log group (the group exists: the stack creates it).
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
# Publishing to a KMS-encrypted SNS topic needs these on the topic's key.
TOPIC_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# What the forensics account may do with a member's sharing key, only through EC2 (copying a shared snapshot).
# AWS lists these for whoever copies a shared encrypted snapshot (DescribeKey, CreateGrant, GenerateDataKey*,
# ReEncrypt*, Decrypt).
SHARING_KEY_FORENSICS_ACTIONS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey",
                                 "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo")


class UnscopedAction(ValueError):
    """An action was declared that this module cannot scope: decide its resources here before granting it."""


def _check_actions(actions: Iterable[str]) -> tuple[str, ...]:
    found = tuple(sorted(set(actions)))
    for action in found:
        service, _, name = action.partition(":")
        if not service or not name or "*" in action or "?" in action:
            raise UnscopedAction(f"not an explicit IAM action: {action!r} (wildcard actions are never granted)")
    return found


def _statement(sid: str, actions: Iterable[str], resources: list[str], condition: dict | None = None,
               effect: str = "Allow") -> dict:
    statement = {"Sid": sid, "Effect": effect, "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _document(statements: list[dict]) -> dict:
    return {"Version": VERSION, "Statement": statements}


def allowed_actions(document: dict) -> set[str]:
    """Every action an identity policy document allows (for tests and reports)."""
    found: set[str] = set()
    for statement in document.get("Statement", []):
        if statement.get("Effect") == "Allow":
            actions = statement.get("Action", [])
            found.update([actions] if isinstance(actions, str) else actions)
    return found


# ---------------------------------------------------------------------------------------------------------------
# Trust
# ---------------------------------------------------------------------------------------------------------------
def responder_trust_conditions(partition: str, security_account: str, external_id: str,
                               principal_arns: Iterable[str]) -> dict:
    """Conditions on the member and forensics roles' trust: exactly the function roles that need the role
    (`aws:PrincipalArn`, exact ARNs, `stacks.tasks`), with the external id.

    The external id stays as confused-deputy protection (a third party the responder acts for cannot make it use
    another tenant's role), not as a secret: it is in every function's environment, and the exact principal ARNs
    are what keeps everyone else out."""
    return {
        "ArnEquals": {"aws:PrincipalArn": sorted(set(principal_arns))},
        "StringEquals": {"sts:ExternalId": external_id},
    }


def responder_trust(partition: str, security_account: str, external_id: str, principal_arns: Iterable[str]) -> dict:
    return _document([{
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{security_account}:root"},
        "Action": "sts:AssumeRole",
        "Condition": responder_trust_conditions(partition, security_account, external_id, principal_arns),
    }])


def service_trust(service: str, *, source_account: str | None = None, source_arn: str | None = None) -> dict:
    """A service role's trust; `aws:SourceAccount` / `aws:SourceArn` (confused-deputy protection) where the service
    sets them when it assumes the role."""
    statement: dict = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    condition: dict = {}
    if source_account:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return _document([statement])


# ---------------------------------------------------------------------------------------------------------------
# Member account
# ---------------------------------------------------------------------------------------------------------------
def _kms_statements(sid: str, actions: Iterable[str], resources: list[str], services: list[str], *,
                    direct: bool) -> list[dict]:
    """KMS actions used through AWS services only (`kms:ViaService`), grants only for AWS resources
    (`kms:GrantIsForAWSResource`); with `direct`, kms:DescribeKey also as a direct call (resolving an alias)."""
    via = {"StringLike": {"kms:ViaService": services if len(services) > 1 else services[0]}}
    actions = sorted(set(actions))
    described = [a for a in actions if direct and a in DIRECT_KMS_ACTIONS]
    grants = [a for a in actions if a == "kms:CreateGrant"]
    through = [a for a in actions if a not in described and a not in grants]
    statements = []
    if described:
        statements.append(_statement(f"{sid}Describe", described, resources))
    if through:
        statements.append(_statement(f"{sid}ThroughServices", through, resources, via))
    if grants:
        statements.append(_statement(f"{sid}GrantsForAwsResources", grants, resources,
                                     {**via, "Bool": {"kms:GrantIsForAWSResource": "true"}}))
    return statements


def collected_by_condition(partition: str, security_account: str) -> dict:
    """Only snapshots the responder collected: tagged `ir:collected-by` with one of its executions' ARNs. The tag
    can be written only when the snapshot is created (`_tag_statements`), so no role can tag a snapshot it did not
    make and then delete or share it."""
    return {"StringLike": {f"aws:ResourceTag/{COLLECTED_BY_TAG}":
                           f"arn:{partition}:states:*:{security_account}:execution:{STATE_MACHINE_NAME}:*"}}


def _snapshots(partition: str) -> str:
    return f"arn:{partition}:ec2:*::snapshot/*"


def _evidence_statements(partition: str, security_account: str, actions: list[str],
                         share_with: str | None) -> list[dict]:
    """DeleteSnapshot (retention) and ModifySnapshotAttribute (sharing) on the responder's snapshots only; sharing
    with exactly `share_with` (ec2:Add/userId), never with a group (`all`)."""
    collected = collected_by_condition(partition, security_account)
    statements = []
    deletes = [a for a in actions if a != "ec2:ModifySnapshotAttribute"]
    if deletes:
        statements.append(_statement("OnlyTheRespondersSnapshots", deletes, [_snapshots(partition)], collected))
    if "ec2:ModifySnapshotAttribute" in actions:
        if not share_with:
            raise UnscopedAction("ec2:ModifySnapshotAttribute: no account to share with (the forensics account)")
        statements.append(_statement(
            "ShareOnlyTheRespondersSnapshotsWithForensics", ["ec2:ModifySnapshotAttribute"], [_snapshots(partition)],
            {**collected, "ForAllValues:StringEquals": {"ec2:Add/userId": [share_with]}}))
        statements.append(_statement(
            "NeverShareWithAGroup", ["ec2:ModifySnapshotAttribute"], ["*"],
            {"Null": {"ec2:Add/group": "false"}}, effect="Deny"))
        statements.append(_statement(
            "NeverShareWithAnotherAccount", ["ec2:ModifySnapshotAttribute"], ["*"],
            {"ForAnyValue:StringNotEquals": {"ec2:Add/userId": [share_with]}}, effect="Deny"))
    return statements


def creating_actions(actions: Iterable[str]) -> list[str]:
    """The EC2 actions among `actions` that create a resource and may tag it at creation (TagSpecifications)."""
    return sorted(a.split(":", 1)[1] for a in actions
                  if a.startswith(("ec2:Create", "ec2:Copy")) and a != "ec2:CreateTags" or a == "ec2:RunInstances")


def _tag_statements(partition: str, security_account: str, actions: Iterable[str], *, account: str,
                    evidence_keys: Iterable[str], instance_keys: Iterable[str] = ()) -> list[dict]:
    """ec2:CreateTags: any tags on what the responder creates (ec2:CreateAction), afterwards only the evidence keys
    the code writes later (`evidence_keys`: ir:source, ir:hash) on the responder's own snapshots, and on instances
    only `instance_keys` (ir:incident, ir:quarantine). Never ir:collected-by or the protection tag afterwards."""
    statements = [_statement("TagOnlyWhatTheResponderCreates", ["ec2:CreateTags"], ["*"],
                             {"StringEquals": {"ec2:CreateAction": creating_actions(actions)}})]
    if evidence_keys:
        statements.append(_statement(
            "TagTheRespondersSnapshotsWithEvidenceKeys", ["ec2:CreateTags"], [_snapshots(partition)],
            {**collected_by_condition(partition, security_account),
             "ForAllValues:StringEquals": {"aws:TagKeys": sorted(evidence_keys)}}))
    if instance_keys:
        statements.append(_statement(
            "TagInstancesWithIncidentKeys", ["ec2:CreateTags"], [f"arn:{partition}:ec2:*:{account}:instance/*"],
            {"ForAllValues:StringEquals": {"aws:TagKeys": sorted(instance_keys)}}))
    return statements


# IAM actions that change an identity, its policies or what guards it (explicit denies: wildcards are fine here).
IAM_WRITE_PATTERNS = ("iam:Add*", "iam:Attach*", "iam:Change*", "iam:Create*", "iam:Deactivate*", "iam:Delete*",
                      "iam:Detach*", "iam:Enable*", "iam:Put*", "iam:Remove*", "iam:Resync*", "iam:Set*",
                      "iam:Tag*", "iam:Untag*", "iam:Update*", "iam:Upload*")
POLICY_WRITE_ACTIONS = ("iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                        "iam:SetDefaultPolicyVersion", "iam:TagPolicy", "iam:UntagPolicy")


def guarded_resources(partition: str, account: str) -> list[str]:
    """The responder's own identities in `account`, by exact ARN: the member role and its read-only twin, the
    forensics, custody signer and deny-all profile's roles, the functions' and the state machine's roles
    (single-account layout), the rule's role and the deny-all instance profile. Never a name prefix: an attacker's
    `ir-responder-backdoor` role must stay containable (issue 10)."""
    iam_arn = f"arn:{partition}:iam::{account}"
    roles = [names.MEMBER_ROLE_NAME, names.MEMBER_READ_ROLE_NAME, names.MEMBER_RELEASE_ROLE_NAME,
             names.FORENSICS_ROLE_NAME, names.SIGNER_ROLE_NAME,
             names.DENY_ALL_ROLE_NAME, names.STATE_MACHINE_ROLE_NAME, names.RULE_ROLE_NAME,
             *(names.function_role_name(spec) for spec in FUNCTIONS)]
    return [f"{iam_arn}:role/{name}" for name in roles] + [f"{iam_arn}:instance-profile/{names.DENY_ALL_PROFILE}"]


def guard_statements(partition: str, account: str, protected_tag: str) -> list[dict]:  # noqa: ARG001 - see below
    """Explicit denies the role cannot remove (they sit in its own inline policy, which the first deny covers): no
    change to the responder's identities or to any managed policy. Principals tagged protected are *not* denied
    here: a tag is a claim the responder checks in CloudTrail (who set it, when - responder.protection); an IAM deny
    on the tag would let a stolen key that tags itself buy immunity."""
    iam_arn = f"arn:{partition}:iam::{account}"
    return [
        _statement("NeverChangeTheRespondersIdentities", IAM_WRITE_PATTERNS, guarded_resources(partition, account),
                   effect="Deny"),
        _statement("NeverChangeManagedPolicies", POLICY_WRITE_ACTIONS, [f"{iam_arn}:policy/*"], effect="Deny"),
    ]


def _purpose_values() -> list[str]:
    from responder.aws.ec2 import GROUP_NAMES

    return sorted(GROUP_NAMES)


def _evidence_tag_keys(side: str) -> list[str]:
    """The snapshot tags the evidence code writes after creation: ir:source (member side) and ir:hash."""
    from responder.evidence import TAG_HASH, TAG_SOURCE

    return [TAG_HASH, TAG_SOURCE] if side == "member" else [TAG_HASH]


def _instance_tag_keys() -> list[str]:
    from responder.isolation import INCIDENT_TAG, QUARANTINE_TAG

    return [INCIDENT_TAG, QUARANTINE_TAG]


SECURITY_GROUP_RULE_ACTIONS = frozenset({
    "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress"})
# The forensic workstation (responder.workstation, responder.aws.workstation): reads, and the three changes each
# scoped by tags in `_workstation_statements`.
WORKSTATION_READ_ACTIONS = frozenset({"ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSubnets",
                                      "ec2:DescribeVolumes"})
WORKSTATION_CHANGE_ACTIONS = frozenset({"ec2:CreateVolume", "ec2:AttachVolume", "ec2:RunInstances"})
# EBS direct APIs take snapshot ARNs and tag conditions: only the responder's own snapshots are listed.
EBS_LIST_ACTIONS = frozenset({"ebs:ListSnapshotBlocks"})


def _workstation_statements(partition: str, account: str, security_account: str, actions: list[str]) -> list[dict]:
    """The forensic workstation's changes in the forensics account (responder.workstation): volumes created only
    tagged ``ir:purpose=forensic-analysis`` with the incident and only from the responder's own snapshots (tag
    ir:collected-by); attached only such volumes, only to instances tagged ``ir:purpose=forensic-workstation``;
    instances launched only from images of this account tagged so, and only tagged so at launch."""
    from responder.workstation import VOLUME_PURPOSE, WORKSTATION_PURPOSE

    ec2 = f"arn:{partition}:ec2:*:{account}"
    purpose = "aws:ResourceTag/ir:purpose"
    statements = []
    if "ec2:CreateVolume" in actions:
        statements.append(_statement("CreateOnlyAnalysisVolumes", ["ec2:CreateVolume"], [f"{ec2}:volume/*"], {
            "StringEquals": {"aws:RequestTag/ir:purpose": VOLUME_PURPOSE},
            "Null": {"aws:RequestTag/ir:incident": "false"}}))
        statements.append(_statement("VolumesOnlyFromTheRespondersCopies", ["ec2:CreateVolume"],
                                     [_snapshots(partition)], collected_by_condition(partition, security_account)))
    if "ec2:AttachVolume" in actions:
        statements.append(_statement("AttachOnlyToForensicWorkstations", ["ec2:AttachVolume"],
                                     [f"{ec2}:instance/*"], {"StringEquals": {purpose: WORKSTATION_PURPOSE}}))
        statements.append(_statement("AttachOnlyAnalysisVolumes", ["ec2:AttachVolume"], [f"{ec2}:volume/*"],
                                     {"StringEquals": {purpose: VOLUME_PURPOSE}}))
    if "ec2:RunInstances" in actions:
        statements.append(_statement("LaunchOnlyFromForensicImages", ["ec2:RunInstances"],
                                     [f"arn:{partition}:ec2:*::image/*"],
                                     {"StringEquals": {purpose: WORKSTATION_PURPOSE, "ec2:Owner": account}}))
        statements.append(_statement("LaunchOnlyTaggedWorkstations", ["ec2:RunInstances"], [f"{ec2}:instance/*"],
                                     {"StringEquals": {"aws:RequestTag/ir:purpose": WORKSTATION_PURPOSE}}))
        statements.append(_statement("LaunchIntoThisAccountsNetwork", ["ec2:RunInstances"],
                                     [f"{ec2}:{kind}/*" for kind in ("network-interface", "security-group",
                                                                     "subnet", "volume", "key-pair")]))
    return statements


def member_read_policy(actions: Iterable[str]) -> dict:
    """The read-only member role's permissions: exactly `actions` (responder.permissions.member_read_actions(), the
    Describe calls Triage makes in a member account), on ``*``: DescribeAutoScalingGroups and DescribeInstances
    support no resource-level permission (Service Authorization Reference). No write of any kind is accepted."""
    actions = sorted(set(actions))
    for action in actions:
        verb = action.split(":", 1)[1]
        if not verb.startswith(("Describe", "Get", "List")):
            raise UnscopedAction(f"{action}: the read-only member role takes only Describe/Get/List actions")
    return _document([_statement("ReadOnly", actions, ["*"])]) if actions else _document([])


RELEASE_DETACH_ACTIONS = frozenset({"iam:DetachUserPolicy"})
# A release's reads of an instance's state: no resource-level permission for these (Service Authorization
# Reference), so "*"; they change nothing.
RELEASE_READ_ACTIONS = frozenset({
    "ec2:DescribeInstances", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeNetworkAcls",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetHealth",
    "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups"})


def _release_scopes(partition: str, account: str) -> dict[str, tuple[str, list[str], dict | None]]:
    """{action: (sid, resources, condition)} of a release's undo calls on instances (responder.release)."""
    ec2 = f"arn:{partition}:ec2:*:{account}"
    elb = f"arn:{partition}:elasticloadbalancing:*:{account}"
    return {
        "iam:GetInstanceProfile": ("ReadInstanceProfiles", [f"arn:{partition}:iam::{account}:instance-profile/*"],
                                   None),
        # the per-interface call (never the instance-level one), on this account's interfaces and groups
        "ec2:ModifyNetworkInterfaceAttribute": ("RestoreInterfaceGroups", [f"{ec2}:network-interface/*",
                                                                           f"{ec2}:security-group/*"], None),
        # only instances the isolation tagged with its incident (responder.isolation, tag step)
        "ec2:ReplaceIamInstanceProfileAssociation": (
            "RestoreProfilesOfIsolatedInstances", [f"{ec2}:instance/*"],
            {"Null": {"aws:ResourceTag/ir:incident": "false"}}),
        # the original profile's role, whichever it was, but only to EC2; never the responder's own roles (the
        # explicit deny of guard_statements' NeverPassTheRespondersRoles below)
        "iam:PassRole": ("PassTheOriginalProfilesRoleToEc2", [f"arn:{partition}:iam::{account}:role/*"],
                         {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        "ec2:DeleteNetworkAclEntry": ("DeleteTheIsolationsAclEntries", [f"{ec2}:network-acl/*"], None),
        "elasticloadbalancing:RegisterTargets": ("RegisterTargetsAgain", [f"{elb}:targetgroup/*/*"], None),
        "elasticloadbalancing:RegisterInstancesWithLoadBalancer": ("RegisterWithClassicLoadBalancersAgain",
                                                                   [f"{elb}:loadbalancer/*"], None),
        "autoscaling:AttachInstances": (
            "AttachToAutoScalingGroupsAgain",
            [f"arn:{partition}:autoscaling:*:{account}:autoScalingGroup:*:autoScalingGroupName/*"], None),
    }


def member_release_policy(*, partition: str, account: str, actions: Iterable[str], quarantine_policy_arn: str,
                          protected_tag: str = "ir:protected") -> dict:
    """The release member role's permissions: exactly `actions` (responder.permissions.member_release_actions(): the
    reads a release checks and the undo calls), each on the narrowest resources IAM allows: IAM users of this
    account; DetachUserPolicy only of the quarantine policy (iam:PolicyARN); an instance's undo calls scoped in
    `_release_scopes` (ReplaceIamInstanceProfileAssociation only on instances tagged ir:incident, PassRole only to
    EC2 and never the responder's own roles); plus the explicit denies of `guard_statements`. Anything else is
    refused here: the role is widened only deliberately."""
    actions = sorted(set(actions))
    iam_arn = f"arn:{partition}:iam::{account}"
    scopes = _release_scopes(partition, account)
    users = [a for a in actions if a in IAM_USER_ACTIONS and a not in RELEASE_DETACH_ACTIONS]
    detach = [a for a in actions if a in RELEASE_DETACH_ACTIONS]
    reads = [a for a in actions if a in RELEASE_READ_ACTIONS]
    scoped = [a for a in actions if a in scopes]
    other = sorted(set(actions) - set(users) - set(detach) - set(reads) - set(scoped))
    if other:
        raise UnscopedAction(f"{other[0]}: the release role takes only the undo calls scoped in stacks/policies.py "
                             "member_release_policy")
    statements = []
    if users:
        statements.append(_statement("ReleaseIamUsers", users, [f"{iam_arn}:user/*"]))
    if detach:
        statements.append(_statement("DetachOnlyTheQuarantinePolicy", detach, [f"{iam_arn}:user/*"],
                                     {"ArnEquals": {"iam:PolicyARN": quarantine_policy_arn}}))
    if reads:
        statements.append(_statement("ReadWhatAReleaseChecks", reads, ["*"]))
    for action in scoped:
        sid, resources, condition = scopes[action]
        statements.append(_statement(sid, [action], resources, condition))
    if "iam:PassRole" in scoped:
        statements.append(_statement("NeverPassTheRespondersRoles", ["iam:PassRole"],
                                     [r for r in guarded_resources(partition, account) if ":role/" in r],
                                     effect="Deny"))
    return _document(statements + guard_statements(partition, account, protected_tag))


def member_policy(*, partition: str, account: str, security_account: str, actions: Iterable[str],
                  deny_all_role_arn: str, quarantine_policy_arn: str, forensics_account: str,
                  protected_tag: str = "ir:protected") -> dict:
    """The member role's permissions: exactly `actions` (responder.permissions.member_actions()), plus the
    explicit denies of `guard_statements`."""
    groups: dict[str, list[str]] = defaultdict(list)
    for action in _check_actions(actions):
        if action == "iam:PassRole":
            groups["pass"].append(action)
        elif action == "iam:AttachUserPolicy":
            groups["attach"].append(action)
        elif action in IAM_USER_ACTIONS:
            groups["users"].append(action)
        elif action in IAM_ROLE_ACTIONS:
            groups["roles"].append(action)
        elif action in IAM_INSTANCE_PROFILE_ACTIONS:
            groups["profiles"].append(action)
        elif action in ACCOUNT_LIST_ACTIONS:
            groups["list"].append(action)
        elif action in KEY_ADMIN_ACTIONS:
            groups["keys"].append(action)
        elif action.startswith("iam:"):
            raise UnscopedAction(f"{action}: add it to IAM_USER_ACTIONS / IAM_ROLE_ACTIONS in stacks/policies.py "
                                 "(its resource type), or scope it there")
        elif action in EVIDENCE_SNAPSHOT_ACTIONS:
            groups["evidence"].append(action)
        elif action == "ec2:CreateTags":
            groups["tags"].append(action)
        elif action in SECURITY_GROUP_RULE_ACTIONS:
            groups["rules"].append(action)
        elif action == "ec2:CreateSecurityGroup":
            groups["group"].append(action)
        elif action in EBS_LIST_ACTIONS:
            groups["ebs"].append(action)
        elif action.startswith("kms:"):
            groups["kms"].append(action)
        else:
            groups["any"].append(action)
    iam_arn = f"arn:{partition}:iam::{account}"
    ec2_arn = f"arn:{partition}:ec2:*:{account}"
    statements = []
    if groups["users"]:
        statements.append(_statement("IamUsers", groups["users"], [f"{iam_arn}:user/*"]))
    if groups["attach"]:
        statements.append(_statement("AttachOnlyTheQuarantinePolicy", groups["attach"], [f"{iam_arn}:user/*"],
                                     {"ArnEquals": {"iam:PolicyARN": quarantine_policy_arn}}))
    if groups["roles"]:
        statements.append(_statement("IamRoles", groups["roles"], [f"{iam_arn}:role/*"]))
    if groups["profiles"]:
        statements.append(_statement("IamInstanceProfiles", groups["profiles"], [f"{iam_arn}:instance-profile/*"]))
    if groups["pass"]:
        statements.append(_statement("PassOnlyTheDenyAllRole", groups["pass"], [deny_all_role_arn],
                                     {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}))
    if groups["evidence"]:
        statements += _evidence_statements(partition, security_account, groups["evidence"], forensics_account)
    if groups["tags"]:
        statements += _tag_statements(partition, security_account, actions, account=account,
                                      evidence_keys=_evidence_tag_keys("member"),
                                      instance_keys=_instance_tag_keys())
    purpose = {"StringEquals": {"aws:ResourceTag/ir:purpose": _purpose_values()}}
    if groups["rules"]:
        statements.append(_statement("OnlyTheRespondersSecurityGroupRules", groups["rules"],
                                     [f"{ec2_arn}:security-group/*"], purpose))
    if groups["group"]:
        statements.append(_statement("CreateGroupsInAnyVpc", groups["group"], [f"{ec2_arn}:vpc/*"]))
        statements.append(_statement("CreateOnlyTheRespondersGroups", groups["group"],
                                     [f"{ec2_arn}:security-group/*"],
                                     {"StringEquals": {"aws:RequestTag/ir:purpose": _purpose_values()}}))
    if groups["ebs"]:
        statements.append(_statement("ListBlocksOfTheRespondersSnapshots", groups["ebs"], [_snapshots(partition)],
                                     collected_by_condition(partition, security_account)))
    for sid, prefix in (("ListRoles", "iam:"), ("ListKeys", "kms:")):  # KMS actions in statements of their own
        listed = [a for a in groups["list"] if a.startswith(prefix)]
        if listed:
            statements.append(_statement(sid, listed, ["*"]))
    if groups["keys"]:
        statements.append(_statement("GrantsAndPoliciesOfThisAccountsKeys", groups["keys"],
                                     [f"arn:{partition}:kms:*:{account}:key/*"]))
    if groups["kms"]:  # any key: a volume may be encrypted under any key of the account
        statements += _kms_statements("KmsKeys", groups["kms"], ["*"], [EC2_SERVICE, EBS_SERVICE], direct=True)
    if groups["any"]:
        statements.append(_statement("ContainAndCollect", groups["any"], ["*"]))
    statements += guard_statements(partition, account, protected_tag)
    return _document(statements)


DENY_ALL_POLICY = _document([{"Sid": "DenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}])


def account_root_statement(partition: str, account: str) -> dict:
    """The key's own account administers and uses it through IAM (the KMS default key policy)."""
    return {"Sid": "ThisAccountThroughIam", "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}


def sharing_key_policy(*, partition: str, account: str, forensics_account: str, region: str,
                       forensics_region: str | None = None) -> dict:
    """The member's evidence-sharing key: the forensics account may use it only through EC2 (to copy a snapshot
    shared with it), never directly. `region`: the key's; `forensics_region`: where the forensics account copies to.
    A cross-region CopySnapshot is called in the destination region while the source snapshot's key is the source
    region's, and AWS does not document which of the two EC2 endpoints its KMS calls name in kms:ViaService: both
    EC2 endpoints are admitted (EC2 only, either way)."""
    via = list(dict.fromkeys([f"ec2.{region}.amazonaws.com", f"ec2.{forensics_region or region}.amazonaws.com"]))
    via = via[0] if len(via) == 1 else via
    return _document([
        account_root_statement(partition, account),
        {"Sid": "ForensicsAccountOnlyThroughEc2", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{forensics_account}:root"},
         "Action": [a for a in SHARING_KEY_FORENSICS_ACTIONS if a != "kms:CreateGrant"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": via}}},
        {"Sid": "ForensicsAccountGrantsOnlyForEc2", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{forensics_account}:root"},
         "Action": "kms:CreateGrant", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": via},
                       "Bool": {"kms:GrantIsForAWSResource": "true"}}},
    ])


# ---------------------------------------------------------------------------------------------------------------
# Forensics account
# ---------------------------------------------------------------------------------------------------------------
def forensics_key_policy(*, partition: str, account: str) -> dict:
    """The forensics key: only the forensics account's own principals (through IAM). No production account."""
    return _document([account_root_statement(partition, account)])


# The manifest signature: only the custody signer role signs, only with the custody key (no service in between).
CUSTODY_SIGNING_ALGORITHM = "ECDSA_SHA_256"  # the custody key is ECC_NIST_P256 (SIGN_VERIFY)
SIGNING_ACTIONS = frozenset({"kms:Sign"})


def custody_key_policy(*, partition: str, account: str, signer_arn: str) -> dict:
    """The custody signing key (asymmetric, SIGN_VERIFY): the forensics account administers it through IAM but only
    the custody signer role (`signer_arn`, assumed only by Finalize's role) may sign - not the forensics role that
    writes the evidence; anyone in the account may verify or read the public key (verifying needs no secret)."""
    root = {"AWS": f"arn:{partition}:iam::{account}:root"}
    return _document([
        {"Sid": "ThisAccountAdministersThroughIam", "Effect": "Allow", "Principal": root,
         "Action": ["kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
                    "kms:DisableKey", "kms:EnableKey", "kms:GetKeyPolicy", "kms:GetPublicKey", "kms:ListAliases",
                    "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:TagResource",
                    "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription", "kms:Verify"],
         "Resource": "*"},
        {"Sid": "OnlyTheCustodySignerSigns", "Effect": "Allow", "Principal": root, "Action": "kms:Sign",
         "Resource": "*", "Condition": {"ArnEquals": {"aws:PrincipalArn": signer_arn}}},
        {"Sid": "NobodyElseSigns", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Sign",
         "Resource": "*", "Condition": {"ArnNotEquals": {"aws:PrincipalArn": signer_arn}}},
    ])


def signer_policy(*, partition: str, account: str, actions: Iterable[str], signing_key_arn: str,
                  protected_tag: str = "ir:protected") -> dict:
    """The custody signer role's permissions: `kms:Sign` (responder.permissions.signer_actions()) on the custody key
    only, ECDSA over a digest only; the explicit denies of `guard_statements`. Nothing else: it reads and writes no
    evidence (the forensics role writes the signature document Finalize gets back)."""
    found = _check_actions(actions)
    unexpected = sorted(set(found) - SIGNING_ACTIONS)
    if unexpected:
        raise UnscopedAction(f"{unexpected}: the custody signer role only signs manifests")
    if not signing_key_arn:
        raise UnscopedAction("kms:Sign: no custody signing key to scope it to")
    statements = [_statement("SignManifestsWithTheCustodyKey", found, [signing_key_arn],
                             {"StringEquals": {"kms:SigningAlgorithm": CUSTODY_SIGNING_ALGORITHM,
                                               "kms:MessageType": "DIGEST"}})] if found else []
    return _document(statements + guard_statements(partition, account, protected_tag))


# Every manifest and signature document of an incident (responder.manifest.prefix): written once, never replaced.
MANIFEST_KEYS = "incidents/*/manifest*"


def evidence_bucket_policy(*, partition: str, bucket: str, key_arn: str, writer_arn: str,
                           custodian_arn: str) -> list[dict]:
    """The evidence bucket's statements beyond TLS-only: only the forensics role (`writer_arn`) writes objects,
    always under the forensics key; a manifest or signature document only if its key does not exist (S3
    conditional writes: a put or multipart completion without `If-None-Match` is denied, so nobody - the forensics
    role included - writes a second version over one); nobody but the custodian role deletes an object or a
    version, bypasses governance retention or shortens a retention."""
    objects = f"arn:{partition}:s3:::{bucket}/*"
    anyone = {"AWS": "*"}
    return [
        {"Sid": "OnlyTheForensicsRoleWrites", "Effect": "Deny", "Principal": anyone, "Action": "s3:PutObject",
         "Resource": objects, "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writer_arn}}},
        {"Sid": "OnlyUnderTheForensicsKey", "Effect": "Deny", "Principal": anyone, "Action": "s3:PutObject",
         "Resource": objects,
         # a request that names a key must name the forensics key; one that names none gets the bucket default
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
                       "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}}},
        {"Sid": "OnlySseKms", "Effect": "Deny", "Principal": anyone, "Action": "s3:PutObject", "Resource": objects,
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                       "Null": {"s3:x-amz-server-side-encryption": "false"}}},
        # S3 User Guide, "Enforce conditional writes on Amazon S3 buckets": s3:if-none-match is present on PutObject
        # and CompleteMultipartUpload requests carrying the header; s3:ObjectCreationOperation is false for the
        # multipart steps that cannot carry it (CreateMultipartUpload, UploadPart, UploadPartCopy). IfExists: a
        # request without the key is an object creation too (fail closed). CopyObject onto a manifest is refused.
        {"Sid": "ManifestsAreWrittenOnce", "Effect": "Deny", "Principal": anyone, "Action": "s3:PutObject",
         "Resource": f"arn:{partition}:s3:::{bucket}/{MANIFEST_KEYS}",
         "Condition": {"Null": {"s3:if-none-match": "true"},
                       "BoolIfExists": {"s3:ObjectCreationOperation": "true"}}},
        {"Sid": "NoDeletionOrBypassButTheCustodian", "Effect": "Deny", "Principal": anyone,
         "Action": ["s3:BypassGovernanceRetention", "s3:DeleteObject", "s3:DeleteObjectVersion",
                    "s3:PutObjectRetention", "s3:PutObjectLegalHold"],
         "Resource": objects, "Condition": {"ArnNotEquals": {"aws:PrincipalArn": custodian_arn}}},
        {"Sid": "NoLockChangeButTheCustodian", "Effect": "Deny", "Principal": anyone,
         "Action": ["s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration"],
         "Resource": f"arn:{partition}:s3:::{bucket}",
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": custodian_arn}}},
    ]


def forensics_policy(*, partition: str, account: str, region: str, security_account: str, actions: Iterable[str],
                     key_arn: str, bucket: str, member_accounts: Iterable[str],
                     protected_tag: str = "ir:protected", key_regions: Iterable[str] | None = None,
                     organization_id: str = "", organization_paths: Iterable[str] = ()) -> dict:
    """The forensics role's permissions: exactly `actions` (responder.permissions.forensics_actions()), plus the
    explicit denies of `guard_statements` and never unlocking a snapshot. `key_regions`: the regions whose member
    sharing keys a forensics copy may read (every region of the estate; default `region`)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for action in _check_actions(actions):
        service = action.split(":", 1)[0]
        if action in EVIDENCE_SNAPSHOT_ACTIONS or action == "ec2:LockSnapshot":
            groups["evidence"].append(action)
        elif action == "ec2:CreateTags":
            groups["tags"].append(action)
        elif action in EBS_LIST_ACTIONS:
            groups["ebs"].append(action)
        elif action in WORKSTATION_CHANGE_ACTIONS:
            groups["workstation"].append(action)
        elif action in WORKSTATION_READ_ACTIONS:
            groups["reads"].append(action)
        elif action in SIGNING_ACTIONS:
            raise UnscopedAction(f"{action}: only the custody signer role signs (SIGNER_ACTIONS, signer_policy)")
        elif action.startswith("iam:"):
            raise UnscopedAction(f"{action}: the forensics role changes no identity")
        elif action == "s3:GetObject":
            groups["s3read"].append(action)
        else:
            groups[service if service in ("kms", "s3") else "any"].append(action)
    statements = []
    if groups["kms"]:
        # the forensics key: copies through EC2, hashing through EBS, evidence objects through S3 (bucket default)
        statements += _kms_statements("ForensicsKey", groups["kms"], [key_arn],
                                      [EC2_SERVICE, EBS_SERVICE, S3_SERVICE], direct=True)
        # the members' sharing keys (their ids are not known here): only through EC2, as their key policies say
        members = sorted(set(member_accounts))
        where = list(dict.fromkeys(key_regions or (region,)))
        statements += _kms_statements("MemberSharingKeys", groups["kms"],
                                      [f"arn:{partition}:kms:{r}:{m}:key/*" for r in where for m in members],
                                      [EC2_SERVICE], direct=False)
        if organization_id:  # organization mode: the accounts the member StackSet reaches, without a redeploy
            statements += organization_sharing_key_statements(partition, where, organization_id, groups["kms"],
                                                              organization_paths)
    if groups["s3"]:
        statements.append(_statement(
            "EvidenceBucketOfThisAccount", groups["s3"],
            [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
            {"StringEquals": {"s3:ResourceAccount": account}}))
    if groups["s3read"]:
        # Finalize reads only the CloudTrail captures the incident report is built from, and the report back
        from responder.aws.s3 import READ_KEYS

        statements.append(_statement(
            "ReadCapturesAndReports", groups["s3read"], [f"arn:{partition}:s3:::{bucket}/{k}" for k in READ_KEYS],
            {"StringEquals": {"s3:ResourceAccount": account}}))
    if groups["evidence"]:
        statements += _evidence_statements(partition, security_account, groups["evidence"], None)
    if groups["tags"]:
        statements += _tag_statements(partition, security_account, actions, account=account,
                                      evidence_keys=_evidence_tag_keys("forensics"))
    if groups["ebs"]:
        statements.append(_statement("ListBlocksOfTheRespondersSnapshots", groups["ebs"], [_snapshots(partition)],
                                     collected_by_condition(partition, security_account)))
    if groups["any"]:
        statements.append(_statement("CopyAndHashSnapshots", groups["any"], ["*"]))
    if groups["reads"]:
        statements.append(_statement("ReadWorkstationsImagesAndVolumes", groups["reads"], ["*"]))
    if groups["workstation"]:
        statements += _workstation_statements(partition, account, security_account, groups["workstation"])
    statements += guard_statements(partition, account, protected_tag)
    statements.append(_statement("NeverUnlockEvidence", ["ec2:UnlockSnapshot"], ["*"], effect="Deny"))
    return _document(statements)


# ---------------------------------------------------------------------------------------------------------------
# Security (responder) account
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrailTable:
    """The organization trail's Athena table the scope queries run on (context keys athena*, stacks.config)."""
    account: str  # the security account: the workgroup and the Glue Data Catalog are there
    region: str
    database: str
    table: str
    workgroup: str
    trail_bucket: str  # bucket[/prefix] the table's LOCATION reads
    output_location: str  # s3://bucket/prefix/ of the workgroup's query results
    partition: str = "aws"  # may be a CDK token

    @staticmethod
    def _split(location: str) -> tuple[str, str]:
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        return bucket, prefix

    def statements(self, actions: Iterable[str]) -> list[dict]:
        """Least privilege for the trail queries (Athena User Guide, "Access to Amazon S3", "Fine-grained access
        to databases and tables"): the Athena actions on the one workgroup; Glue's reads on the catalog, the
        database and the table; the trail bucket read (objects under its prefix); the workgroup's output location
        written and read back (objects under its prefix). Nothing else in any bucket."""
        found = {a for a in actions if not a.startswith("cloudtrail:")}  # Lake's actions: TrailLake
        athena = sorted(a for a in found if a.startswith("athena:"))
        glue = sorted(a for a in found if a.startswith("glue:"))
        if not athena:
            return []
        arn = f"arn:{self.partition}"
        statements = [_statement("TrailQueriesWorkgroup", athena,
                                 [f"{arn}:athena:{self.region}:{self.account}:workgroup/{self.workgroup}"])]
        if glue:
            base = f"{arn}:glue:{self.region}:{self.account}"
            statements.append(_statement("TrailTableDefinition", glue, [
                f"{base}:catalog", f"{base}:database/{self.database}", f"{base}:table/{self.database}/{self.table}"]))
        for sid, location, object_actions, bucket_actions in (
                ("TrailLogsRead", self.trail_bucket, {"s3:GetObject"}, {"s3:GetBucketLocation", "s3:ListBucket"}),
                ("TrailQueryResults", self.output_location,
                 {"s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"},
                 {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"})):
            bucket, prefix = self._split(location)
            granted = found if sid == "TrailQueryResults" else found - {"s3:PutObject", "s3:AbortMultipartUpload",
                                                                        "s3:ListMultipartUploadParts",
                                                                        "s3:ListBucketMultipartUploads"}
            objects, buckets = sorted(object_actions & granted), sorted(bucket_actions & granted)
            if buckets:
                statements.append(_statement(f"{sid}Bucket", buckets, [f"{arn}:s3:::{bucket}"]))
            if objects:
                statements.append(_statement(f"{sid}Objects", objects, [f"{arn}:s3:::{bucket}/{prefix}*"]))
        return statements


@dataclass(frozen=True)
class TrailLake:
    """The organization's CloudTrail Lake event data store the scope queries run on (context key
    cloudTrailLakeEventDataStore): Lake's query actions on that one event data store, nothing else."""
    event_data_store_arn: str

    def statements(self, actions: Iterable[str]) -> list[dict]:
        lake = sorted(a for a in actions if a.startswith("cloudtrail:"))
        return [_statement("TrailEventDataStore", lake, [self.event_data_store_arn])] if lake else []


@dataclass(frozen=True)
class OrganizationRoles:
    """Organization mode (context key organization): a task may assume its member roles (by name) in any account of
    the organization (aws:ResourceOrgID), so that accounts the member StackSet reaches later need no redeploy of
    the responder - never in the forensics or the security account (aws:ResourceAccount). The member roles' trust
    stays exact (the task roles' ARNs, the external id)."""
    partition: str
    organization_id: str
    role_names: tuple[str, ...]
    never_accounts: tuple[str, ...]
    org_paths: tuple[str, ...] = ()  # aws:ResourceOrgPaths of the StackSet's target OUs (Organization)

    def statement(self) -> dict:
        return _statement(
            "AssumeMemberRolesInTheOrganization", ["sts:AssumeRole"],
            sorted(f"arn:{self.partition}:iam::*:role/{name}" for name in self.role_names),
            {"StringEquals": {"aws:ResourceOrgID": self.organization_id},
             **_org_paths_condition(self.org_paths),
             "StringNotEquals": {"aws:ResourceAccount": sorted(set(self.never_accounts))}})


def _org_paths_condition(paths: Iterable[str]) -> dict:
    """Only resources of accounts in the target OUs: aws:ResourceOrgPaths is multivalued (ForAnyValue); a request
    without it (an account outside any organization) matches nothing."""
    paths = sorted(set(paths))
    return {"ForAnyValue:StringLike": {"aws:ResourceOrgPaths": paths}} if paths else {}


def organization_sharing_key_statements(partition: str, regions: Iterable[str], organization_id: str,
                                        actions: Iterable[str], org_paths: Iterable[str] = ()) -> list[dict]:
    """Organization mode: the forensics role may use the sharing key of any account of the organization (their ids
    are not known at synth), only through EC2, as the keys' own policies say (aws:ResourceOrgID)."""
    statements = _kms_statements("OrganizationSharingKeys", [a for a in actions if a.startswith("kms:")],
                                 [f"arn:{partition}:kms:{r}:*:key/*" for r in regions], [EC2_SERVICE], direct=False)
    for statement in statements:
        statement["Condition"]["StringEquals"] = {"aws:ResourceOrgID": organization_id}
        statement["Condition"].update(_org_paths_condition(org_paths))
    return statements


def function_policy(*, actions: Iterable[str], assume_role_arns: Iterable[str], table_arn: str, topic_arn: str,
                    topic_key_arn: str, log_group_arn: str, executions_arn: str,
                    trail_actions: Iterable[str] = (), trail: TrailTable | TrailLake | None = None,
                    organization_roles: OrganizationRoles | None = None, secrets_arn: str | None = None) -> dict:
    """A responder function's permissions: assume `assume_role_arns` (the member and / or forensics roles its task
    needs, `stacks.tasks`), exactly `actions` (its task's responder actions) on the responder's own table, topic and
    state machine executions
    (`executions_arn`: `arn:...:execution:<state machine name>:*`), write its own logs."""
    groups: dict[str, list[str]] = defaultdict(list)
    for action in _check_actions(actions):
        service = action.split(":", 1)[0]
        if service not in ("dynamodb", "sns", "kms", "sts", "states", "secretsmanager"):
            raise UnscopedAction(
                f"{action}: the responder's functions are granted only scoped actions; add a resource scope for "
                f"{service!r} to stacks/policies.py:function_policy before declaring it in RESPONDER_ACTIONS")
        if action == "sts:AssumeRole":
            continue  # granted below, on the member and forensics roles only
        if service == "sts":
            raise UnscopedAction(f"{action}: only sts:AssumeRole (on the member and forensics roles) is granted")
        groups[service].append(action)
    statements = []
    if assume_role_arns:  # only the tasks that act there (stacks.tasks): Finalize only the forensics role
        statements.append(_statement("AssumeMemberAndForensicsRoles", ["sts:AssumeRole"],
                                     sorted(set(assume_role_arns))))
    if organization_roles is not None and organization_roles.role_names:
        statements.append(organization_roles.statement())
    if groups["dynamodb"]:
        statements.append(_statement("IncidentTable", groups["dynamodb"], [table_arn]))
    if groups["sns"]:
        statements.append(_statement("NotificationTopic", groups["sns"], [topic_arn]))
    if groups["states"]:
        statements.append(_statement("ContainmentExecutions", groups["states"], [executions_arn]))
    if groups["secretsmanager"]:  # the Release function: restored console passwords, under its prefix only
        if not secrets_arn:
            raise UnscopedAction("secretsmanager: pass secrets_arn (release_secrets_arn) to scope it")
        statements.append(_statement("ReleasedConsolePasswords", groups["secretsmanager"], [secrets_arn]))
    key_actions = set(groups["kms"])
    if "sns:Publish" in groups["sns"]:
        key_actions.update(TOPIC_KEY_ACTIONS)
    if key_actions:
        statements.append(_statement("NotificationTopicKey", key_actions, [topic_key_arn]))
    if trail is not None:  # only when the deployment names a trail table (otherwise the task never queries)
        statements += trail.statements(_check_actions(trail_actions))
    statements.append(_statement("OwnLogGroup", LOG_ACTIONS, [log_group_arn]))
    return _document(statements)


def function_extra_actions(responder_actions: Iterable[str]) -> set[str]:
    """Actions a function role holds beyond sts:AssumeRole and `responder_actions`: the platform's own needs."""
    extra = set(LOG_ACTIONS)
    if "sns:Publish" in set(responder_actions):
        extra.update(TOPIC_KEY_ACTIONS)
    return extra


def state_machine_policy(function_arns: Iterable[str]) -> dict:
    """The state machine's role: invoke the responder's functions (unqualified ARNs, as the ASL names them)."""
    return _document([_statement("InvokeTheResponderFunctions", ["lambda:InvokeFunction"], list(function_arns))])


def rule_target_policy(state_machine_arn: str) -> dict:
    """The EventBridge rule's role: start executions of the containment state machine, nothing else."""
    return _document([_statement("StartContainment", ["states:StartExecution"], [state_machine_arn])])


def event_bus_arn(partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:events:{region}:{account}:event-bus/default"


def forwarder_policy(bus_arn: str) -> dict:
    """A forwarding rule's role: put events on the responder's default event bus, nothing else."""
    return _document([_statement("ForwardToTheResponder", ["events:PutEvents"], [bus_arn])])


def signal_bus_statement(*, partition: str, bus_arn: str, security_account: str,
                         forwarders: Iterable[tuple[str, str]]) -> dict | None:
    """The statement the responder's default bus needs so that the member accounts' forwarding rules can put their
    exposed-key events there: each forwarder role exactly (`aws:PrincipalArn`), AWS's own sources only
    (`events:source`: a custom event can never carry an ``aws.`` source, so nothing a member account's principal
    writes itself is accepted). None when every forwarder is in the security account (no bus policy needed)."""
    from stacks.catalog import SIGNAL_SOURCES

    others = sorted({(a, r) for a, r in forwarders if a != security_account})
    if not others:
        return None
    return {"Sid": names.SIGNAL_BUS_STATEMENT, "Effect": "Allow",
            "Principal": {"AWS": sorted({f"arn:{partition}:iam::{a}:root" for a, _ in others})},
            "Action": "events:PutEvents", "Resource": bus_arn,
            "Condition": {"ArnEquals": {"aws:PrincipalArn": sorted(
                {names.role_arn(partition, a, names.forwarder_role_name(r)) for a, r in others})},
                "StringEquals": {"events:source": list(SIGNAL_SOURCES)}}}


def dead_letter_queue_policy(*, queue_arn: str, rule_arn: str | list[str], partition: str) -> dict:  # noqa: ARG001
    """The rules' dead-letter queue: TLS only; EventBridge may send to it for these rules only."""
    return _document([
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "EventBridgeForTheRuleOnly", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": "sqs:SendMessage", "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}},
    ])


def release_secrets_arn(partition: str, region: str, account: str) -> str:
    """The secrets a release may create: restored console passwords (responder.settings.RELEASE_SECRET_PREFIX)."""
    from responder.settings import RELEASE_SECRET_PREFIX

    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{RELEASE_SECRET_PREFIX}*"


def executions_arn(partition: str, region: str, account: str, state_machine_name: str) -> str:
    """Every execution of the named state machine (a name, not a reference: the functions' policies cannot refer
    to the state machine that refers to them)."""
    return f"arn:{partition}:states:{region}:{account}:execution:{state_machine_name}:*"


def state_machine_arn(partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:states:{region}:{account}:stateMachine:{STATE_MACHINE_NAME}"


def rule_arn(partition: str, region: str, account: str, name: str = names.RULE_NAME) -> str:
    return f"arn:{partition}:events:{region}:{account}:rule/{name}"


def topic_key_policy(*, partition: str, account: str, service: str = "cloudwatch.amazonaws.com",
                     source_arn: str | None = None) -> dict:
    """A notification topic's key: this account through IAM, and the service that publishes to the topic
    (CloudWatch alarms, or EventBridge for the member accounts' IAM watch) for this account's alarms / rules only
    (`aws:SourceAccount`, `aws:SourceArn`)."""
    service_name = service.split(".", 1)[0]
    arn = source_arn or f"arn:{partition}:{service_name}:*:{account}:alarm:*"
    return _document([
        account_root_statement(partition, account),
        {"Sid": "ServicePublishesForThisAccount", "Effect": "Allow", "Principal": {"Service": service},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": arn}}},
    ])


# ---------------------------------------------------------------------------------------------------------------
# IAM watch (member accounts): the detective control for what IAM cannot condition
# ---------------------------------------------------------------------------------------------------------------
IAM_EVENTS_REGION = "us-east-1"  # CloudTrail delivers IAM (a global service) events to EventBridge there
INLINE_POLICY_WRITES = ("PutRolePolicy", "PutUserPolicy")


def iam_write_events(member_actions: Iterable[str]) -> list[str]:
    """The IAM write calls (CloudTrail eventName) the member role is granted."""
    return sorted(a.split(":", 1)[1] for a in member_actions
                  if a.startswith("iam:") and a != "iam:PassRole"  # PassRole is no API call of its own
                  and not a.split(":", 1)[1].startswith(("Get", "List")))


def watch_patterns(partition: str, account: str) -> dict[str, dict]:
    """The IAM watch rules' patterns for a member account, from the code's declarations. Here, not in the CDK
    stack module, so the local runtime builds the same rules without starting the CDK (jsii) runtime."""
    from responder import permissions
    from responder.settings import REVOKE_POLICY_NAME

    return iam_watch_patterns(
        member_role_arn=names.role_arn(partition, account, names.MEMBER_ROLE_NAME),
        member_actions=permissions.member_actions(), own_policy_names=[REVOKE_POLICY_NAME])


def iam_watch_patterns(*, member_role_arn: str, member_actions: Iterable[str],
                       own_policy_names: Iterable[str]) -> dict[str, dict]:
    """EventBridge patterns on CloudTrail IAM calls made with the member role's sessions: an inline policy whose
    name is not one the responder writes (IAM has no condition key for it), and any IAM write the role is not
    granted (attempts are recorded too, with their errorCode). rule name suffix -> pattern."""
    base = {"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"]}
    issuer = {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [member_role_arn]}}}}
    return {
        "foreign-inline-policy": {**base, "detail": {
            **issuer, "eventName": list(INLINE_POLICY_WRITES),
            "requestParameters": {"policyName": [{"anything-but": sorted(own_policy_names)}]}}},
        "ungranted-iam-write": {**base, "detail": {
            **issuer, "readOnly": [False],
            "eventName": [{"anything-but": sorted(set(iam_write_events(member_actions)) | set(INLINE_POLICY_WRITES))}]}},
    }


def watch_topic_policy(*, topic_arn: str, rule_arns: Iterable[str], partition: str) -> dict:  # noqa: ARG001
    """The IAM watch topic: TLS only; EventBridge publishes for the watch rules only."""
    return _document([
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "EventBridgeForTheWatchRulesOnly", "Effect": "Allow",
         "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}}},
    ])


# ---------------------------------------------------------------------------------------------------------------
# IAM least-privilege analyzer (cloudsplaining, tests/infra/test_iam_analyzer.py)
# ---------------------------------------------------------------------------------------------------------------
# Every finding the analyzer reports on the synthesized roles, in its strictest mode (statements scoped to ARNs are
# flagged too), with the reason it stays. (role name, finding category, action) -> reason. A finding without an
# entry fails `make test`, and so does an entry no finding needs.
_SESSIONS = ("the responder revokes the sessions of whichever role a finding names (inline policy "
             "AWSRevokeOlderSessions, the runbook's command)")
ANALYZER_REASONS: dict[tuple[str, str, str], str] = {
    (names.MEMBER_ROLE_NAME, "ResourceExposure", "iam:PutRolePolicy"):
        f"Needed: {_SESSIONS}. Explicit denies (NeverChangeTheRespondersIdentities) keep it off the "
        "responder's own roles (exact ARNs); protected principals are the code's decision (tags checked in CloudTrail); IAM has no condition on an inline policy's "
        "name, so the IAM watch rule (stacks.member_watch_stack) reports any other policy name.",
    (names.MEMBER_ROLE_NAME, "ResourceExposure", "iam:PutUserPolicy"):
        "Needed: the quarantined user gets the same AWSRevokeOlderSessions inline policy (its console and "
        "temporary sessions end). Same explicit denies and IAM watch rule as iam:PutRolePolicy.",
    (names.MEMBER_ROLE_NAME, "ResourceExposure", "iam:DeleteLoginProfile"):
        "Needed: quarantine removes the compromised user's console password (context removeConsoleAccess, its "
        "creation date recorded first); it grants nothing, and the explicit denies keep it off the responder's own roles.",
    (names.MEMBER_ROLE_NAME, "ResourceExposure", "kms:RevokeGrant"):
        "Needed: a KMS grant the attacker created (CloudTrail CreateGrant, verified with ListGrants) is revoked "
        "(responder.pivots). Only this account's keys, and each key's own policy must allow it too; it deletes a "
        "grant and grants nothing.",
    (names.MEMBER_ROLE_NAME, "ResourceExposure", "iam:UpdateAccessKey"):
        "Needed: the runbook deactivates the compromised user's access keys. It can only set a key Active or "
        "Inactive (it creates none and reads no secret); protected users are the code's decision (tags checked in CloudTrail).",
    (names.FORENSICS_ROLE_NAME, "DataExfiltration", "s3:GetObject"):
        "Needed: Finalize builds the incident report from the principal's CloudTrail captures and reads the report "
        "back to check its SHA-256 (responder.finalize.write_report). Only incidents/*/cloudtrail/* and "
        "incidents/*/report-* of this account's evidence bucket (ReadCapturesAndReports): what the responder itself "
        "wrote there, never a snapshot or another object.",
}
for _spec_key in ("ContainIdentities", "IsolateInstance", "CollectEvidence", "AnalyzeEvidence", "Finalize"):
    ANALYZER_REASONS[(f"ir-responder-{_spec_key}-role", "CredentialsExposure", "sts:AssumeRole")] = (
        "The task acts in the member / forensics accounts through their roles: the resource names exactly those "
        "roles (stacks.tasks), and their trust names exactly this role's ARN with the external id.")
ANALYZER_REASONS[("ir-responder-Triage-role", "CredentialsExposure", "sts:AssumeRole")] = (
    "Triage reads the instances of the Auto Scaling groups an attack sequence names (DescribeAutoScalingGroups in "
    "the member account, responder.signals_groups) instead of trusting the finding's strings: the resource names "
    "exactly the read-only twins of the member roles (stacks.member_stack: Describe calls only, no write), whose "
    "trust names exactly this role's ARN with the external id. Triage never assumes the member role itself.")
ANALYZER_REASONS[("ir-responder-Release-role", "CredentialsExposure", "sts:AssumeRole")] = (
    "A release request undoes the responder's own containment (responder.release): the resource names exactly the "
    "release twins of the member roles (stacks.member_stack: the undo calls only), whose trust names exactly this "
    "role's ARN with the external id. The Release function never assumes the member role itself.")
ANALYZER_REASONS[(names.MEMBER_RELEASE_ROLE_NAME, "ResourceExposure", "iam:UpdateAccessKey")] = (
    "Needed: a release reactivates the keys the responder deactivated (only those, after checking they are still "
    "inactive). It can only set a key Active or Inactive; it creates none and reads no secret.")
ANALYZER_REASONS[(names.MEMBER_RELEASE_ROLE_NAME, "ResourceExposure", "iam:DeleteUserPolicy")] = (
    "Needed: a release deletes the responder's own inline deny-all (ir-quarantine-deny-all), after checking its "
    "document; IAM has no condition on an inline policy's name. Deleting a policy grants nothing.")
ANALYZER_REASONS[(names.MEMBER_RELEASE_ROLE_NAME, "ResourceExposure", "iam:CreateLoginProfile")] = (
    "Needed, only when a release request asks (restoreConsoleAccess): a console password for a user whose login "
    "profile the containment deleted, after checking the user has none; reset required at the first sign-in, the "
    "password kept in a secret of the responder's account only. The responder's own identities are denied.")
