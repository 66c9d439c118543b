"""The member stack (every workload account): the role the responder assumes, the evidence-sharing KMS key and the
deny-all instance profile used for isolation."""
from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Environment, Stack
from constructs import Construct

from stacks import names, policies
from stacks.config import Config
from stacks.constructs.access_role import ResponderAccessRole
from stacks.constructs.deny_all_profile import DenyAllInstanceProfile
from stacks.constructs.keys import ManagedKey
from stacks.environment import quarantine_policy_arn
from stacks.nag import wildcard_acknowledgements

# Why each resource wildcard of the member role is needed (by statement Sid of stacks.policies.member_policy).
WILDCARD_REASONS = {
    "IamUsers": "The responder reads and quarantines whichever IAM user a finding names in this account; the "
                "actions are listed one by one and limited to users.",
    "AttachOnlyTheQuarantinePolicy": "Any user a finding names may be quarantined, but the iam:PolicyARN "
                                     "condition allows attaching only the quarantine policy.",
    "IamRoles": "The responder revokes the sessions of whichever role a finding names in this account; the actions "
                "are listed one by one and limited to roles.",
    "IamInstanceProfiles": "The responder reads the instance profile of whichever instance a finding names.",
    "ContainAndCollect": "The responder isolates and snapshots whichever instance, volume or snapshot a finding "
                         "names; every action is listed explicitly, EC2 Describe* and the EBS direct APIs support "
                         "no resource-level permissions, and only the responder's roles may assume this role.",
    "OnlyTheRespondersSnapshots": "Deleting (retention) and sharing snapshots: any snapshot id, but the "
                                  "aws:ResourceTag/ir:collected-by condition admits only snapshots one of the "
                                  "responder's executions collected.",
    "KmsKeysDescribe": "kms:DescribeKey resolves the sharing key's alias; it reads key metadata only.",
    "KmsKeysThroughServices": "A volume may be encrypted under any key of the account: EC2 needs the key to "
                              "re-encrypt its snapshot under the sharing key (and EBS to list its blocks); "
                              "kms:ViaService allows the use only through EC2 and EBS.",
    "KmsKeysGrantsForAwsResources": "EC2 creates grants on the snapshot keys while it copies; kms:ViaService and "
                                    "kms:GrantIsForAWSResource allow grants only for EC2.",
}


class MemberStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, account: str) -> None:
        super().__init__(
            scope, id,
            env=Environment(account=account, region=config.region),
            description="GuardDuty auto-responder: member role, evidence-sharing key, deny-all instance profile "
                        f"(workload account {account})",
        )
        from responder import permissions

        partition = Aws.PARTITION
        deny_all = DenyAllInstanceProfile(self, "DenyAllProfile")
        self.sharing_key = ManagedKey(
            self, "SharingKey",
            alias=names.SHARING_KEY_ALIAS,
            description="Evidence sharing: snapshots shared with the forensics account are encrypted with this key; "
                        "the forensics account may use it only through EC2",
            policy=policies.sharing_key_policy(partition=partition, account=account,
                                               forensics_account=config.forensics_account, region=config.region),
        ).key
        policy = policies.member_policy(
            partition=partition, account=account, security_account=config.security_account,
            actions=permissions.member_actions(),
            deny_all_role_arn=deny_all.role.role_arn, quarantine_policy_arn=quarantine_policy_arn(config, partition))
        self.member_role = ResponderAccessRole(
            self, "MemberRole",
            role_name=names.MEMBER_ROLE_NAME,
            description="Assumed by the GuardDuty auto-responder to contain identities and instances and to collect "
                        "evidence in this account",
            security_account=config.security_account,
            external_id=config.external_id,
            policy=policy,
            protected_tag=config.protected_tag,
        ).role
        self.acknowledgements = wildcard_acknowledgements(self.member_role, policy, WILDCARD_REASONS)
        CfnOutput(self, "MemberRoleArn", value=self.member_role.role_arn)
        CfnOutput(self, "SharingKeyArn", value=self.sharing_key.key_arn)
