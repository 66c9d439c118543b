"""A customer managed KMS key for evidence or notifications: alias, rotation on, an explicit key policy, retained."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, aws_iam as iam, aws_kms as kms
from constructs import Construct


class ManagedKey(Construct):
    """`policy` is the complete key policy (a JSON dict from stacks.policies): nothing else is added to it."""

    ROTATION_DAYS = 365

    def __init__(self, scope: Construct, id: str, *, alias: str, description: str, policy: dict) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self, "Key",
            alias=alias,
            description=description,
            enable_key_rotation=True,
            rotation_period=Duration.days(self.ROTATION_DAYS),
            policy=iam.PolicyDocument.from_json(policy),
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
