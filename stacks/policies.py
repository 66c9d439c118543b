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
from typing import Iterable

from stacks import names
from stacks.catalog import STATE_MACHINE_NAME

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
    "iam:ListServiceSpecificCredentials", "iam:TagUser", "iam:GetAccessKeyLastUsed", "iam:DeleteLoginProfile",
})
IAM_ROLE_ACTIONS = frozenset({
    "iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:ListRoleTags", "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:TagRole",
})
IAM_INSTANCE_PROFILE_ACTIONS = frozenset({"iam:GetInstanceProfile"})

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
def responder_trust_conditions(partition: str, security_account: str, external_id: str) -> dict:
    """Conditions on the member and forensics roles' trust: only the responder's own roles, with the external id."""
    return {
        "ArnLike": {"aws:PrincipalArn": names.responder_roles_pattern(partition, security_account)},
        "StringEquals": {"sts:ExternalId": external_id},
    }


def responder_trust(partition: str, security_account: str, external_id: str) -> dict:
    return _document([{
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{security_account}:root"},
        "Action": "sts:AssumeRole",
        "Condition": responder_trust_conditions(partition, security_account, external_id),
    }])


def service_trust(service: str) -> dict:
    return _document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}])


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
    """Only snapshots the responder collected: tagged `ir:collected-by` with one of its executions' ARNs."""
    return {"StringLike": {f"aws:ResourceTag/{COLLECTED_BY_TAG}":
                           f"arn:{partition}:states:*:{security_account}:execution:{STATE_MACHINE_NAME}:*"}}


def _evidence_snapshots(partition: str, security_account: str, actions: list[str]) -> dict:
    return _statement("OnlyTheRespondersSnapshots", actions, [f"arn:{partition}:ec2:*::snapshot/*"],
                      collected_by_condition(partition, security_account))


def member_policy(*, partition: str, account: str, security_account: str, actions: Iterable[str],
                  deny_all_role_arn: str, quarantine_policy_arn: str) -> dict:
    """The member role's permissions: exactly `actions` (responder.permissions.member_actions())."""
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
        elif action in EVIDENCE_SNAPSHOT_ACTIONS:
            groups["evidence"].append(action)
        elif action.startswith("kms:"):
            groups["kms"].append(action)
        else:
            groups["any"].append(action)
    iam_arn = f"arn:{partition}:iam::{account}"
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
        statements.append(_statement("PassOnlyTheDenyAllRole", groups["pass"], [deny_all_role_arn]))
    if groups["evidence"]:
        statements.append(_evidence_snapshots(partition, security_account, groups["evidence"]))
    if groups["kms"]:  # any key: a volume may be encrypted under any key of the account
        statements += _kms_statements("KmsKeys", groups["kms"], ["*"], [EC2_SERVICE, EBS_SERVICE], direct=True)
    if groups["any"]:
        statements.append(_statement("ContainAndCollect", groups["any"], ["*"]))
    return _document(statements)


DENY_ALL_POLICY = _document([{"Sid": "DenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}])


def account_root_statement(partition: str, account: str) -> dict:
    """The key's own account administers and uses it through IAM (the KMS default key policy)."""
    return {"Sid": "ThisAccountThroughIam", "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}


def sharing_key_policy(*, partition: str, account: str, forensics_account: str, region: str) -> dict:
    """The member's evidence-sharing key: the forensics account may use it only through EC2 (to copy a snapshot
    shared with it), never directly."""
    return _document([
        account_root_statement(partition, account),
        {"Sid": "ForensicsAccountOnlyThroughEc2", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{forensics_account}:root"},
         "Action": [a for a in SHARING_KEY_FORENSICS_ACTIONS if a != "kms:CreateGrant"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}}},
        {"Sid": "ForensicsAccountGrantsOnlyForEc2", "Effect": "Allow",
         "Principal": {"AWS": f"arn:{partition}:iam::{forensics_account}:root"},
         "Action": "kms:CreateGrant", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"},
                       "Bool": {"kms:GrantIsForAWSResource": "true"}}},
    ])


# ---------------------------------------------------------------------------------------------------------------
# Forensics account
# ---------------------------------------------------------------------------------------------------------------
def forensics_key_policy(*, partition: str, account: str) -> dict:
    """The forensics key: only the forensics account's own principals (through IAM). No production account."""
    return _document([account_root_statement(partition, account)])


def forensics_policy(*, partition: str, account: str, region: str, security_account: str, actions: Iterable[str],
                     key_arn: str, bucket: str, member_accounts: Iterable[str]) -> dict:
    """The forensics role's permissions: exactly `actions` (responder.permissions.forensics_actions())."""
    groups: dict[str, list[str]] = defaultdict(list)
    for action in _check_actions(actions):
        service = action.split(":", 1)[0]
        if action in EVIDENCE_SNAPSHOT_ACTIONS:
            groups["evidence"].append(action)
        else:
            groups[service if service in ("kms", "s3") else "any"].append(action)
    statements = []
    if groups["kms"]:
        # the forensics key: copies through EC2, hashing through EBS, evidence objects through S3 (bucket default)
        statements += _kms_statements("ForensicsKey", groups["kms"], [key_arn],
                                      [EC2_SERVICE, EBS_SERVICE, S3_SERVICE], direct=True)
        # the members' sharing keys (their ids are not known here): only through EC2, as their key policies say
        members = sorted(set(member_accounts))
        statements += _kms_statements("MemberSharingKeys", groups["kms"],
                                      [f"arn:{partition}:kms:{region}:{m}:key/*" for m in members],
                                      [EC2_SERVICE], direct=False)
    if groups["s3"]:
        statements.append(_statement(
            "EvidenceBucketOfThisAccount", groups["s3"],
            [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
            {"StringEquals": {"s3:ResourceAccount": account}}))
    if groups["evidence"]:
        statements.append(_evidence_snapshots(partition, security_account, groups["evidence"]))
    if groups["any"]:
        statements.append(_statement("CopyAndHashSnapshots", groups["any"], ["*"]))
    return _document(statements)


# ---------------------------------------------------------------------------------------------------------------
# Security (responder) account
# ---------------------------------------------------------------------------------------------------------------
def function_policy(*, actions: Iterable[str], assume_role_arns: Iterable[str], table_arn: str, topic_arn: str,
                    topic_key_arn: str, log_group_arn: str, executions_arn: str) -> dict:
    """A responder function's permissions: assume the member and forensics roles, exactly `actions`
    (responder.permissions.responder_actions()) on the responder's own table, topic and state machine executions
    (`executions_arn`: `arn:...:execution:<state machine name>:*`), write its own logs."""
    groups: dict[str, list[str]] = defaultdict(list)
    for action in _check_actions(actions):
        service = action.split(":", 1)[0]
        if service not in ("dynamodb", "sns", "kms", "sts", "states"):
            raise UnscopedAction(
                f"{action}: the responder's functions are granted only scoped actions; add a resource scope for "
                f"{service!r} to stacks/policies.py:function_policy before declaring it in RESPONDER_ACTIONS")
        if action == "sts:AssumeRole":
            continue  # granted below, on the member and forensics roles only
        if service == "sts":
            raise UnscopedAction(f"{action}: only sts:AssumeRole (on the member and forensics roles) is granted")
        groups[service].append(action)
    statements = [_statement("AssumeMemberAndForensicsRoles", ["sts:AssumeRole"], sorted(set(assume_role_arns)))]
    if groups["dynamodb"]:
        statements.append(_statement("IncidentTable", groups["dynamodb"], [table_arn]))
    if groups["sns"]:
        statements.append(_statement("NotificationTopic", groups["sns"], [topic_arn]))
    if groups["states"]:
        statements.append(_statement("ContainmentExecutions", groups["states"], [executions_arn]))
    key_actions = set(groups["kms"])
    if "sns:Publish" in groups["sns"]:
        key_actions.update(TOPIC_KEY_ACTIONS)
    if key_actions:
        statements.append(_statement("NotificationTopicKey", key_actions, [topic_key_arn]))
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


def dead_letter_queue_policy(*, queue_arn: str, rule_arn: str, partition: str) -> dict:  # noqa: ARG001
    """The rule's dead-letter queue: TLS only; EventBridge may send to it for this rule only."""
    return _document([
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "EventBridgeForTheRuleOnly", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": "sqs:SendMessage", "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}},
    ])


def executions_arn(partition: str, region: str, account: str, state_machine_name: str) -> str:
    """Every execution of the named state machine (a name, not a reference: the functions' policies cannot refer
    to the state machine that refers to them)."""
    return f"arn:{partition}:states:{region}:{account}:execution:{state_machine_name}:*"


def topic_key_policy(*, partition: str, account: str) -> dict:
    """The notification topic's key: this account through IAM, and CloudWatch (alarm notifications)."""
    return _document([
        account_root_statement(partition, account),
        {"Sid": "CloudWatchAlarmsPublish", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
    ])
