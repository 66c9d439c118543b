"""The forensics stack (forensics account): the forensics KMS key (only this account can use it), the custody key
(asymmetric: only the custody signer role signs manifests), the role the responder assumes to copy, lock, hash and
record evidence here, the custody signer role (assumed only by Finalize, only to sign), and the evidence bucket (only
the forensics role writes, manifests only once; nobody but the custodian deletes)."""
from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Duration, Environment, RemovalPolicy, Stack, aws_iam as iam, aws_kms as kms
from constructs import Construct

from stacks import names, policies, tasks
from stacks.config import Config
from stacks.constructs.access_role import ResponderAccessRole
from stacks.constructs.evidence_bucket import EvidenceBucket
from stacks.constructs.keys import ManagedKey
from stacks.nag import wildcard_acknowledgements

# Why each resource wildcard of the forensics role is needed (by statement Sid of stacks.policies.forensics_policy).
_SHARING_KEYS = ("Copying a snapshot shared by a member account needs its sharing key, whose id is not known "
                 "here: the resource names only the configured member accounts' keys, and kms:ViaService limits "
                 "their use to EC2 (kms:GrantIsForAWSResource for grants).")
_ORG_KEYS = ("Organization mode: the sharing keys of the accounts the member StackSet reaches (their ids are not "
             "known at synth): aws:ResourceOrgID and aws:ResourceOrgPaths admit only keys of the accounts of the "
             "StackSet's target OUs, and kms:ViaService limits their use to EC2 (kms:GrantIsForAWSResource for "
             "grants).")
_OWN_SNAPSHOTS = ("the aws:ResourceTag/ir:collected-by condition admits only snapshots tagged with one of the "
                  "responder's execution ARNs, a tag that can be written only when a copy is created "
                  "(ec2:CreateAction); a locked copy cannot be deleted by anyone until its lock expires.")
WILDCARD_REASONS = {
    "MemberSharingKeysThroughServices": _SHARING_KEYS,
    "MemberSharingKeysGrantsForAwsResources": _SHARING_KEYS,
    "OrganizationSharingKeysThroughServices": _ORG_KEYS,
    "OrganizationSharingKeysGrantsForAwsResources": _ORG_KEYS,
    "OnlyTheRespondersSnapshots": "Locking forensics copies and deleting them beyond the retention count once "
                                  "their lock allows it: any snapshot id, but " + _OWN_SNAPSHOTS,
    "TagOnlyWhatTheResponderCreates": "Tags on the copies the responder creates, at creation only (ec2:CreateAction "
                                      "names the responder's own copy call).",
    "TagTheRespondersSnapshotsWithEvidenceKeys": "The ir:hash tag written after hashing: aws:TagKeys admits only "
                                                 "that key, and " + _OWN_SNAPSHOTS,
    "ListBlocksOfTheRespondersSnapshots": "The block list of the responder's own copies only: " + _OWN_SNAPSHOTS,
    "EvidenceBucketOfThisAccount": "Objects of the evidence bucket only (s3:ResourceAccount pins the bucket to this "
                                   "account).",
    "ReadCapturesAndReports": "Finalize reads the principal's CloudTrail captures (incidents/*/cloudtrail/*) the "
                              "incident report is built from, and the report it wrote (incidents/*/report-*), "
                              "nothing else of the bucket: any incident id.",
    "ReadWorkstationsImagesAndVolumes": "ec2:DescribeInstances, DescribeImages, DescribeSubnets and DescribeVolumes "
                                        "support no resource-level permission (Service Authorization Reference).",
    "CreateOnlyAnalysisVolumes": "Analysis volumes of the forensic workstation: any new volume id, but only tagged "
                                 "ir:purpose=forensic-analysis with the incident at creation (aws:RequestTag).",
    "VolumesOnlyFromTheRespondersCopies": "Volumes only from the responder's own copies: " + _OWN_SNAPSHOTS,
    "AttachOnlyToForensicWorkstations": "Any instance id, but only instances tagged ir:purpose=forensic-workstation.",
    "AttachOnlyAnalysisVolumes": "Any volume id, but only volumes tagged ir:purpose=forensic-analysis.",
    "LaunchOnlyFromForensicImages": "Any image id, but only images this account owns (ec2:Owner) tagged "
                                    "ir:purpose=forensic-workstation.",
    "LaunchOnlyTaggedWorkstations": "Any new instance id, but only tagged ir:purpose=forensic-workstation at launch.",
    "LaunchIntoThisAccountsNetwork": "A launch names the interface, group, subnet, root volume and key pair of the "
                                     "forensics account's own network: any id, this account only.",
    "CopyAndHashSnapshots": "ec2:DescribeSnapshots supports no resource-level permission, and ec2:CopySnapshot "
                            "reads whichever snapshot a member shared (its tags are not visible here); the trust "
                            "admits only the exact roles of the functions that copy evidence.",
}


class ForensicsStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config) -> None:
        account = config.forensics_account
        super().__init__(
            scope, id,
            env=Environment(account=account, region=config.evidence_region),
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
        forensics_role_arn = names.role_arn(partition, account, names.FORENSICS_ROLE_NAME)
        signer_role_arn = names.role_arn(partition, account, names.SIGNER_ROLE_NAME)
        # The custody key: signs every evidence manifest; only the custody signer role may sign (stacks.policies).
        self.signing_key = kms.Key(
            self, "CustodyKey",
            alias=names.CUSTODY_KEY_ALIAS,
            description="Chain of custody: signs every evidence manifest; only the custody signer role may sign",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            policy=iam.PolicyDocument.from_json(policies.custody_key_policy(
                partition=partition, account=account, signer_arn=signer_role_arn)),
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
        # No automatic rotation: KMS rotates only symmetric keys (cdk-nag's KMS5 knows it); every signature
        # document names the key id that signed it.
        bucket_name = names.evidence_bucket(account, config.evidence_region)
        self.evidence = EvidenceBucket(
            self, "Evidence",
            bucket_name=bucket_name,
            access_log_bucket_name=names.access_log_bucket(account, config.evidence_region),
            key=self.key,
            retention_days=config.evidence_retention_days,
            lock_mode=config.evidence_lock_mode,
            writer_arn=forensics_role_arn,
            custodian_arn=names.role_arn(partition, account, config.evidence_custodian_role),
        )
        policy = policies.forensics_policy(
            partition=partition, account=account, region=config.evidence_region,
            key_regions=config.estate_regions, security_account=config.security_account,
            actions=permissions.forensics_actions(),
            key_arn=self.key.key_arn, bucket=bucket_name, member_accounts=config.member_accounts,
            protected_tag=config.protected_tag,
            organization_id=config.organization.organization_id if config.organization else "",
            organization_paths=config.organization.resource_org_paths if config.organization else ())
        self.forensics_role = ResponderAccessRole(
            self, "ForensicsRole",
            role_name=names.FORENSICS_ROLE_NAME,
            description="Assumed by the GuardDuty auto-responder to copy, hash and record evidence in the forensics "
                        "account",
            security_account=config.security_account,
            external_id=config.external_id,
            policy=policy,
            protected_tag=config.protected_tag,
            principal_arns=tasks.role_arns(partition, config.security_account, tasks.forensics_tasks()),
        ).role
        self.acknowledgements = wildcard_acknowledgements(self.forensics_role, policy, WILDCARD_REASONS)
        # The custody signer: kms:Sign on the custody key and nothing else, trusted only by Finalize's role (the
        # forensics role, which writes the manifests, cannot sign them; stacks.tasks.signer_tasks()).
        signer_policy = policies.signer_policy(partition=partition, account=account,
                                               actions=permissions.signer_actions(),
                                               signing_key_arn=self.signing_key.key_arn,
                                               protected_tag=config.protected_tag)
        self.signer_role = ResponderAccessRole(
            self, "CustodySignerRole",
            role_name=names.SIGNER_ROLE_NAME,
            description="Assumed by the GuardDuty auto-responder's Finalize function only to sign evidence manifests "
                        "with the custody key",
            security_account=config.security_account,
            external_id=config.external_id,
            policy=signer_policy,
            protected_tag=config.protected_tag,
            principal_arns=tasks.role_arns(partition, config.security_account, tasks.signer_tasks()),
        ).role
        self.acknowledgements.update(wildcard_acknowledgements(self.signer_role, signer_policy, {}))
        CfnOutput(self, "ForensicsKeyArn", value=self.key.key_arn,
                  description="Set it as the context key forensicsKeyArn of the responder stack")
        CfnOutput(self, "EvidenceBucketName", value=self.evidence.bucket.bucket_name)
        CfnOutput(self, "ForensicsRoleArn", value=self.forensics_role.role_arn)
        CfnOutput(self, "CustodySignerRoleArn", value=self.signer_role.role_arn)
        CfnOutput(self, "CustodyKeyArn", value=self.signing_key.key_arn,
                  description="Verifies evidence manifests (python -m cli verify)")
