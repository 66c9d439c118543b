"""The forensics stack (forensics account): the forensics KMS key (only this account can use it), the role the
responder assumes to copy and hash snapshots here, and the evidence bucket."""
from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Environment, Stack
from constructs import Construct

from stacks import names, policies
from stacks.config import Config
from stacks.constructs.access_role import ResponderAccessRole
from stacks.constructs.evidence_bucket import EvidenceBucket
from stacks.constructs.keys import ManagedKey
from stacks.nag import wildcard_acknowledgements

# Why each resource wildcard of the forensics role is needed (by statement Sid of stacks.policies.forensics_policy).
_SHARING_KEYS = ("Copying a snapshot shared by a member account needs its sharing key, whose id is not known "
                 "here: the resource names only the configured member accounts' keys, and kms:ViaService limits "
                 "their use to EC2 (kms:GrantIsForAWSResource for grants).")
WILDCARD_REASONS = {
    "MemberSharingKeysThroughServices": _SHARING_KEYS,
    "MemberSharingKeysGrantsForAwsResources": _SHARING_KEYS,
    "OnlyTheRespondersSnapshots": "Deleting forensics copies beyond the retention count: any snapshot id, but the "
                                  "aws:ResourceTag/ir:collected-by condition admits only snapshots one of the "
                                  "responder's executions collected.",
    "EvidenceBucketOfThisAccount": "Objects of the evidence bucket only (s3:ResourceAccount pins the bucket to this "
                                   "account).",
    "CopyAndHashSnapshots": "The responder copies, tags and hashes whichever snapshot a member shared; every action "
                            "is listed explicitly, EC2 Describe* and the EBS direct APIs support no resource-level "
                            "permissions, and only the responder's roles may assume this role.",
}


class ForensicsStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config) -> None:
        account = config.forensics_account
        super().__init__(
            scope, id,
            env=Environment(account=account, region=config.region),
            description="GuardDuty auto-responder: forensics key, forensics role, evidence bucket (forensics account)",
        )
        from responder import permissions

        partition = Aws.PARTITION
        self.key = ManagedKey(
            self, "ForensicsKey",
            alias=names.FORENSICS_KEY_ALIAS,
            description="Forensics evidence: every snapshot copy and evidence object is encrypted with this key; "
                        "only the forensics account can use it",
            policy=policies.forensics_key_policy(partition=partition, account=account),
        ).key
        bucket_name = names.evidence_bucket(account, config.region)
        self.evidence = EvidenceBucket(
            self, "Evidence",
            bucket_name=bucket_name,
            access_log_bucket_name=names.access_log_bucket(account, config.region),
            key=self.key,
            retention_days=config.evidence_retention_days,
            lock_mode=config.evidence_lock_mode,
        )
        policy = policies.forensics_policy(
            partition=partition, account=account, region=config.region, security_account=config.security_account,
            actions=permissions.forensics_actions(),
            key_arn=self.key.key_arn, bucket=bucket_name, member_accounts=config.member_accounts)
        self.forensics_role = ResponderAccessRole(
            self, "ForensicsRole",
            role_name=names.FORENSICS_ROLE_NAME,
            description="Assumed by the GuardDuty auto-responder to copy, hash and record evidence in the forensics "
                        "account",
            security_account=config.security_account,
            external_id=config.external_id,
            policy=policy,
            protected_tag=config.protected_tag,
        ).role
        self.acknowledgements = wildcard_acknowledgements(self.forensics_role, policy, WILDCARD_REASONS)
        CfnOutput(self, "ForensicsKeyArn", value=self.key.key_arn,
                  description="Set it as the context key forensicsKeyArn of the responder stack")
        CfnOutput(self, "EvidenceBucketName", value=self.evidence.bucket.bucket_name)
        CfnOutput(self, "ForensicsRoleArn", value=self.forensics_role.role_arn)
