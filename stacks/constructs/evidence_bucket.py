"""The forensics account's evidence bucket (manifests, captured metadata): versioned, encrypted with the forensics
key, public access blocked, TLS only, Object Lock with a default retention (COMPLIANCE unless the context says
GOVERNANCE), server access logs kept beside it. Its policy (`stacks.policies.evidence_bucket_policy`): only the
forensics role writes, only under the forensics key, and nobody but the named custodian role deletes an object or
a version, bypasses governance retention or changes the lock configuration."""
from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, aws_iam as iam, aws_kms as kms, aws_s3 as s3
from constructs import Construct

from stacks import policies


class EvidenceBucket(Construct):
    def __init__(self, scope: Construct, id: str, *, bucket_name: str, access_log_bucket_name: str,
                 key: kms.IKey, retention_days: int, lock_mode: str, writer_arn: str, custodian_arn: str) -> None:
        super().__init__(scope, id)
        # Server access logs may only go to an SSE-S3 bucket (not SSE-KMS).
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            bucket_name=access_log_bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        retention = (s3.ObjectLockRetention.compliance(Duration.days(retention_days)) if lock_mode == "COMPLIANCE"
                     else s3.ObjectLockRetention.governance(Duration.days(retention_days)))
        self.bucket = s3.Bucket(
            self, "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=retention,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="evidence/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        for statement in policies.evidence_bucket_policy(partition=Aws.PARTITION, bucket=bucket_name,
                                                         key_arn=key.key_arn, writer_arn=writer_arn,
                                                         custodian_arn=custodian_arn):
            self.bucket.add_to_resource_policy(iam.PolicyStatement.from_json(statement))
