"""The incident records (responder account): one item per incident, keyed by the deterministic incident id."""
from __future__ import annotations

from aws_cdk import RemovalPolicy, aws_dynamodb as dynamodb
from constructs import Construct

PARTITION_KEY = "incidentId"


class IncidentTable(Construct):
    def __init__(self, scope: Construct, id: str, *, table_name: str) -> None:
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self, "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
