"""The responder's Lambda functions, one per entry of `stacks.catalog.FUNCTIONS`, from the single `lambdas/` asset.

Each function: python3.13 on arm64, JSON logs into its own log group (with retention), the shared environment
(every name of `responder.settings.ENV`), Powertools from the public layer whose ARN is resolved at deploy time from
the SSM public parameter (synth stays offline), and its own role `ir-responder-<Key>-role` with exactly
`stacks.policies.function_policy` for its task (`stacks.tasks`): the roles its task assumes (Triage the member
roles, to read an attack sequence's Auto Scaling groups; Finalize only the forensics role), its task's declared actions on the responder's own table and topic, its own logs. The
role trusts Lambda for this account only (aws:SourceAccount).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from aws_cdk import Aws, Duration, RemovalPolicy, Tags, aws_iam as iam, aws_kms as kms, aws_lambda as lambda_
from aws_cdk import aws_logs as logs, aws_ssm as ssm
from constructs import Construct

from stacks import names, policies, tasks
from stacks.catalog import FUNCTIONS, LAMBDA_ROOT
from stacks.nag import acknowledge, wildcard_acknowledgements

# Why each resource wildcard of a function role is needed (by statement Sid of stacks.policies.function_policy).
WILDCARD_REASONS = {
    "ContainmentExecutions": "Executions of the containment state machine only: an execution's name is not known "
                             "before it starts.",
    "ReleasedConsolePasswords": "The Release function's restored console passwords only: secrets under "
                                "ir-responder/release/ (one per incident, account and user, named when the release "
                                "runs; Secrets Manager appends a random suffix to every secret ARN).",
    "AssumeMemberRolesInTheOrganization": "Organization mode: the task's member roles (by name) in the accounts the "
                                          "member StackSet reaches later, without a redeploy; aws:ResourceOrgID "
                                          "and aws:ResourceOrgPaths admit only the accounts of the StackSet's "
                                          "target OUs, aws:ResourceAccount never the "
                                          "forensics or security account, and each role's trust names exactly this "
                                          "role's ARN with the external id.",
    "TrailLogsReadObjects": "The organization trail's log objects under the configured prefix, read-only: Athena "
                            "reads whichever objects the table's partitions hold.",
    "TrailQueryResultsObjects": "Query results under the workgroup's output prefix only: Athena names each result "
                                "object after its query execution id.",
}
_LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARN", "ERROR": "ERROR", "CRITICAL": "FATAL"}


class ResponderFunctions(Construct):
    RUNTIME = lambda_.Runtime.PYTHON_3_13
    ARCHITECTURE = lambda_.Architecture.ARM_64
    # Matches aws-lambda-powertools==3.37.0 in requirements.txt (runtime python3.13, arm64).
    POWERTOOLS_LAYER_PARAMETER = "/aws/service/powertools/python/arm64/python3.13/3.37.0"
    ASSET_EXCLUDE = ("**/__pycache__", "**/*.pyc")

    def __init__(self, scope: Construct, id: str, *, environment: Mapping[str, str], account: str,
                 member_accounts: Sequence[str], forensics_account: str, table_arn: str, topic_arn: str,
                 topic_key: kms.IKey, executions_arn: str, log_retention: logs.RetentionDays, log_level: str,
                 protected_tag: str, trail: policies.TrailTable | policies.TrailLake | None = None,
                 organization: tuple[str, tuple[str, ...], tuple[str, ...]] | None = None,
                 secrets_arn: str | None = None) -> None:
        super().__init__(scope, id)
        code = lambda_.Code.from_asset(str(LAMBDA_ROOT), exclude=list(self.ASSET_EXCLUDE))
        layer_arn = ssm.StringParameter.value_for_string_parameter(self, self.POWERTOOLS_LAYER_PARAMETER)
        powertools = lambda_.LayerVersion.from_layer_version_arn(self, "PowertoolsLayer", layer_arn)
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in FUNCTIONS:
            log_group = logs.LogGroup(
                self, f"{spec.key}Logs",
                log_group_name=names.function_log_group(spec),
                retention=log_retention,
                removal_policy=RemovalPolicy.RETAIN,
            )
            policy = policies.function_policy(
                actions=tasks.task_access(spec).responder_actions,
                assume_role_arns=tasks.assume_role_arns(spec, partition=Aws.PARTITION,
                                                        member_accounts=tuple(member_accounts),
                                                        forensics_account=forensics_account),
                table_arn=table_arn, topic_arn=topic_arn,
                topic_key_arn=topic_key.key_arn, log_group_arn=log_group.log_group_arn, executions_arn=executions_arn,
                trail_actions=tasks.task_access(spec).trail_actions, trail=trail,
                organization_roles=policies.OrganizationRoles(
                    partition=Aws.PARTITION, organization_id=organization[0],
                    role_names=tasks.member_role_names(spec), never_accounts=organization[1],
                    org_paths=organization[2])
                if organization else None, secrets_arn=secrets_arn)
            trust = policies.service_trust("lambda.amazonaws.com", source_account=account)["Statement"][0]
            role = iam.Role(
                self, f"{spec.key}Role",
                role_name=names.function_role_name(spec),
                description=f"Execution role of {spec.function_name}",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com").with_conditions(trust["Condition"]),
                inline_policies={"permissions": iam.PolicyDocument.from_json(policy)},
            )
            Tags.of(role).add(protected_tag, "true")
            fn = lambda_.Function(
                self, spec.key,
                function_name=spec.function_name,
                description=spec.description,
                code=code,
                handler=spec.handler,
                runtime=self.RUNTIME,
                architecture=self.ARCHITECTURE,
                timeout=Duration.seconds(spec.timeout_seconds),
                memory_size=spec.memory_mb,
                environment=dict(environment),
                role=role,
                layers=[powertools],
                log_group=log_group,
                logging_format=lambda_.LoggingFormat.JSON,
                application_log_level_v2=lambda_.ApplicationLogLevel(_LEVELS[log_level]),
                system_log_level_v2=lambda_.SystemLogLevel.INFO,
            )
            wildcard_acknowledgements(role, policy, WILDCARD_REASONS)
            acknowledge(fn, "AwsSolutions-L1",
                        "python3.13 is pinned on purpose: it is the runtime the Powertools public layer parameter "
                        "(python3.13/3.37.0) and the test suite target; move both together.")
            self.functions[spec.key] = fn
            self.roles[spec.key] = role
