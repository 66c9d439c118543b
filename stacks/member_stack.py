"""The member stack (every workload account): the role the responder assumes, the evidence-sharing KMS key and the
deny-all instance profile used for isolation."""
from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Environment, IStackSynthesizer, Stack
from constructs import Construct

from stacks import names, policies, tasks
from stacks.config import Config
from stacks.constructs.access_role import ResponderAccessRole
from stacks.constructs.deny_all_profile import DenyAllInstanceProfile
from stacks.constructs.keys import ManagedKey
from stacks.environment import quarantine_policy_arn
from stacks.nag import wildcard_acknowledgements

# Why each resource wildcard of the member role is needed (by statement Sid of stacks.policies.member_policy).
_OWN_SNAPSHOTS = ("the aws:ResourceTag/ir:collected-by condition admits only snapshots tagged with one of the "
                  "responder's execution ARNs, and that tag can be written only when a snapshot is created "
                  "(ec2:CreateAction), so no snapshot can be tagged into scope afterwards.")
WILDCARD_REASONS = {
    "IamUsers": "The responder reads and quarantines whichever IAM user a finding names in this account; the "
                "actions are listed one by one and limited to users; explicit denies exclude the responder's own "
                "identities and every principal tagged protected, and an IAM watch rule reports any IAM write of "
                "this role other than the responder's own policy names.",
    "AttachOnlyTheQuarantinePolicy": "Any user a finding names may be quarantined, but the iam:PolicyARN "
                                     "condition allows attaching only the quarantine policy.",
    "IamRoles": "The responder revokes the sessions of whichever role a finding names in this account; the actions "
                "are listed one by one and limited to roles; explicit denies exclude the responder's own roles and "
                "every role tagged protected, and the IAM watch rule reports any inline policy name other than "
                "AWSRevokeOlderSessions (IAM has no condition key for an inline policy's name).",
    "IamInstanceProfiles": "The responder reads the instance profile of whichever instance a finding names.",
    "OnlyTheRespondersSnapshots": "Deleting snapshots beyond the retention count: any snapshot id, but "
                                  + _OWN_SNAPSHOTS,
    "ShareOnlyTheRespondersSnapshotsWithForensics": "Sharing evidence with the forensics account: "
                                                    + _OWN_SNAPSHOTS + " ec2:Add/userId admits only the forensics "
                                                    "account, and adding a group (all) is denied.",
    "TagOnlyWhatTheResponderCreates": "Tags on resources the responder creates, at creation only: the "
                                      "ec2:CreateAction condition names the responder's own create calls.",
    "TagTheRespondersSnapshotsWithEvidenceKeys": "Evidence tags written after creation (ir:source, ir:hash): "
                                                 "aws:TagKeys admits only those keys, and " + _OWN_SNAPSHOTS,
    "TagInstancesWithIncidentKeys": "The responder tags whichever instance it isolates; aws:TagKeys admits only "
                                    "ir:incident and ir:quarantine (never the protection tag).",
    "OnlyTheRespondersSecurityGroupRules": "Rules change only on the responder's own quarantine and flow-untracking "
                                           "groups (aws:ResourceTag/ir:purpose): no other group can be opened.",
    "CreateGroupsInAnyVpc": "The quarantine group is created in whichever VPC the isolated instance is in.",
    "CreateOnlyTheRespondersGroups": "Groups can be created only tagged ir:purpose with the responder's purposes "
                                     "(aws:RequestTag).",
    "ListBlocksOfTheRespondersSnapshots": "The block list of the responder's own snapshots only: " + _OWN_SNAPSHOTS,
    "KmsKeysDescribe": "kms:DescribeKey resolves the sharing key's alias; it reads key metadata only.",
    "KmsKeysThroughServices": "A volume may be encrypted under any key of the account: EC2 needs the key to "
                              "re-encrypt its snapshot under the sharing key (and EBS to list its blocks); "
                              "kms:ViaService allows the use only through EC2 and EBS.",
    "KmsKeysGrantsForAwsResources": "EC2 creates grants on the snapshot keys while it copies; kms:ViaService and "
                                    "kms:GrantIsForAWSResource allow grants only for EC2.",
    "ListRoles": "iam:ListRoles supports no resource-level permission: the rotation list reads the account's role "
                 "trust policies (responder.rotation).",
    "ListKeys": "kms:ListKeys supports no resource-level permission: the rotation list reads the key ids of the "
                "Region (responder.rotation).",
    "GrantsAndPoliciesOfThisAccountsKeys": "Any key of this account may hold a grant the attacker created or a "
                                           "policy naming the compromised principal; each key's own policy must "
                                           "also allow the call (responder.pivots).",
    "ContainAndCollect": "Describe calls and cloudtrail:LookupEvents support no resource-level permission; the "
                         "remaining changes (instance and interface attributes, the instance profile association, "
                         "snapshot creation and copy, Auto Scaling detach, load balancer deregistration) act on "
                         "whichever instance, interface or load balancer a finding names, which no tag selects in "
                         "advance. The trust admits only the exact roles of the functions that act in members.",
}
RELEASE_REASONS = {
    "ReleaseIamUsers": "A release undoes the containment of whichever user an incident quarantined in this account; "
                       "the actions are listed one by one (reads, UpdateAccessKey, DeleteUserPolicy) and limited to "
                       "users; explicit denies exclude the responder's own identities; the role is trusted only by "
                       "the release function's role, which acts only on a person's release request.",
    "DetachOnlyTheQuarantinePolicy": "Any user an incident quarantined may be released, but the iam:PolicyARN "
                                     "condition allows detaching only the quarantine policy.",
    "ReadWhatAReleaseChecks": "The Describe calls a release checks an instance's state with (EC2, ELB, Auto "
                              "Scaling) support no resource-level permission; they change nothing.",
    "ReadInstanceProfiles": "A release checks that an isolated instance's original profile still exists, whichever "
                            "profile it was; read only.",
    "RestoreInterfaceGroups": "A release puts each interface the responder moved back in its recorded groups; which "
                              "interface and groups is known only from the incident record, and the call is made "
                              "only after the interface is checked to be in the quarantine group alone.",
    "RestoreProfilesOfIsolatedInstances": "Only instances tagged ir:incident (the isolation's tag) may have their "
                                          "profile association replaced, back to the recorded original profile.",
    "PassTheOriginalProfilesRoleToEc2": "The original profile's role, whichever it was, must be passable to give "
                                        "the profile back; iam:PassedToService limits it to EC2 and an explicit "
                                        "deny excludes the responder's own roles.",
    "DeleteTheIsolationsAclEntries": "A release deletes exactly the deny entries the isolation added (rule number, "
                                     "direction and CIDR from the incident record, checked before the call); no tag "
                                     "selects a network ACL in advance.",
    "RegisterTargetsAgain": "A release registers the instance again (with its recorded ports) in the target groups "
                            "the isolation deregistered it from; any target group of this account.",
    "RegisterWithClassicLoadBalancersAgain": "A release registers the instance again with the Classic load "
                                             "balancers the isolation deregistered it from.",
    "AttachToAutoScalingGroupsAgain": "Only when the release request asks (restoreAutoScaling): the instance back "
                                      "into the Auto Scaling group the isolation detached it from.",
}
READ_REASONS = {
    "ReadOnly": "DescribeAutoScalingGroups and DescribeInstances support no resource-level permission; the role "
                "allows nothing else, and its trust admits only the exact role of the function that reads (Triage).",
}


def sharing_key(scope: Construct, *, config: Config, account: str, region: str):
    """The member account's evidence-sharing key of one region (KMS keys are regional: one per region, found by its
    alias `names.SHARING_KEY_ALIAS` in the incident's region)."""
    return ManagedKey(
        scope, "SharingKey",
        alias=names.SHARING_KEY_ALIAS,
        description="Evidence sharing: snapshots shared with the forensics account are encrypted with this key; "
                    "the forensics account may use it only through EC2",
        policy=policies.sharing_key_policy(partition=Aws.PARTITION, account=account,
                                           forensics_account=config.forensics_account, region=region,
                                           forensics_region=config.evidence_region),
    ).key


class MemberStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, account: str | None,
                 synthesizer: IStackSynthesizer | None = None) -> None:
        """`account=None`: the template of every account (AWS::AccountId), for the member StackSet
        (stacks.member_stack_set); no account id but the security and forensics accounts' is written into it."""
        super().__init__(
            scope, id,
            env=Environment(account=account, region=config.region),
            synthesizer=synthesizer,
            description="GuardDuty auto-responder: member role, evidence-sharing key, deny-all instance profile "
                        + (f"(workload account {account})" if account else "(every workload account, StackSet)"),
        )
        from responder import permissions

        partition = Aws.PARTITION
        account = account or Aws.ACCOUNT_ID
        deny_all = DenyAllInstanceProfile(self, "DenyAllProfile")
        self.sharing_key = sharing_key(self, config=config, account=account, region=config.region)
        policy = policies.member_policy(
            partition=partition, account=account, security_account=config.security_account,
            actions=permissions.member_actions(),
            deny_all_role_arn=deny_all.role.role_arn, quarantine_policy_arn=quarantine_policy_arn(config, partition),
            forensics_account=config.forensics_account, protected_tag=config.protected_tag)
        self.member_role = ResponderAccessRole(
            self, "MemberRole",
            role_name=names.MEMBER_ROLE_NAME,
            description="Assumed by the GuardDuty auto-responder to contain identities and instances and to collect "
                        "evidence in this account",
            security_account=config.security_account,
            external_id=config.external_id,
            policy=policy,
            protected_tag=config.protected_tag,
            principal_arns=tasks.role_arns(partition, config.security_account, tasks.member_tasks()),
        ).role
        self.acknowledgements = wildcard_acknowledgements(self.member_role, policy, WILDCARD_REASONS)
        CfnOutput(self, "MemberRoleArn", value=self.member_role.role_arn)
        readers = tasks.member_read_tasks()
        if readers:  # Triage's reads (an attack sequence's Auto Scaling groups): never the member role's power
            read_policy = policies.member_read_policy(permissions.member_read_actions())
            self.member_read_role = ResponderAccessRole(
                self, "MemberReadRole",
                role_name=names.MEMBER_READ_ROLE_NAME,
                description="Assumed by the GuardDuty auto-responder's triage to read (Describe calls only) what a "
                            "finding names in this account",
                security_account=config.security_account,
                external_id=config.external_id,
                policy=read_policy,
                protected_tag=config.protected_tag,
                principal_arns=tasks.role_arns(partition, config.security_account, readers),
            ).role
            self.read_acknowledgements = wildcard_acknowledgements(self.member_read_role, read_policy, READ_REASONS)
        releasers = tasks.member_release_tasks()
        if releasers:  # the release's undo calls (responder.release): never the member role's power
            release_policy = policies.member_release_policy(
                partition=partition, account=account, actions=permissions.member_release_actions(),
                quarantine_policy_arn=quarantine_policy_arn(config, partition), protected_tag=config.protected_tag)
            self.member_release_role = ResponderAccessRole(
                self, "MemberReleaseRole",
                role_name=names.MEMBER_RELEASE_ROLE_NAME,
                description="Assumed by the GuardDuty auto-responder's release function to undo its own containment "
                            "of named targets of an incident in this account, on a person's request only",
                security_account=config.security_account,
                external_id=config.external_id,
                policy=release_policy,
                protected_tag=config.protected_tag,
                principal_arns=tasks.role_arns(partition, config.security_account, releasers),
            ).role
            self.release_acknowledgements = wildcard_acknowledgements(self.member_release_role, release_policy,
                                                                      RELEASE_REASONS)
        CfnOutput(self, "SharingKeyArn", value=self.sharing_key.key_arn)
