"""The containment state machine: Standard workflow, the ASL file deployed as is (`DefinitionBody.from_file`) with
the function ARNs substituted, logging every event to its own log group, X-Ray tracing on."""
from __future__ import annotations

from typing import Mapping

from aws_cdk import Aws, RemovalPolicy, aws_iam as iam, aws_lambda as lambda_, aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import names, policies
from stacks.catalog import ASL_PATH, FUNCTIONS, STATE_MACHINE_NAME


class ContainmentStateMachine(Construct):
    def __init__(self, scope: Construct, id: str, *, functions: Mapping[str, lambda_.IFunction],
                 log_retention: logs.RetentionDays, account: str, region: str) -> None:
        super().__init__(scope, id)
        self.log_group = logs.LogGroup(
            self, "Logs",
            log_group_name=names.STATE_MACHINE_LOG_GROUP,
            retention=log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self, "Role",
            role_name=names.STATE_MACHINE_ROLE_NAME,
            description="Execution role of the containment state machine",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com").with_conditions(
                policies.service_trust("states.amazonaws.com", source_account=account,
                                       source_arn=policies.state_machine_arn(Aws.PARTITION, region, account))
                ["Statement"][0]["Condition"]),
            inline_policies={"invoke-functions": iam.PolicyDocument.from_json(policies.state_machine_policy(
                [functions[spec.key].function_arn for spec in FUNCTIONS]))},
        )
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=STATE_MACHINE_NAME,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(ASL_PATH)),
            definition_substitutions={spec.substitution: functions[spec.key].function_arn for spec in FUNCTIONS},
            role=self.role,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
