"""The responder stack (security account): the EventBridge rule, the containment state machine, the functions, the
dead-letter queue, the incident table, the notifications topic and the alarms."""
from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Environment, Stack, Tags, aws_logs as logs
from constructs import Construct

from stacks import names, policies
from stacks.catalog import STATE_MACHINE_NAME, signal_forwarders
from stacks.config import LOG_RETENTION_DAYS, Config
from stacks.constructs.alarms import ResponderAlarms
from stacks.constructs.functions import ResponderFunctions
from stacks.constructs.incident_table import IncidentTable
from stacks.constructs.notifications import Notifications
from stacks.constructs.state_machine import ContainmentStateMachine
from stacks.constructs.trail_queries import TrailQueries
from stacks.constructs.trigger import GuardDutyTrigger
from stacks.environment import function_environment
from stacks.nag import acknowledge


class ResponderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config) -> None:
        super().__init__(
            scope, id,
            env=Environment(account=config.security_account, region=config.region),
            description="GuardDuty auto-responder: rule, containment state machine, functions, incident records, "
                        "notifications (security account)",
        )
        partition = Aws.PARTITION
        retention = getattr(logs.RetentionDays, LOG_RETENTION_DAYS[config.log_retention_days])
        notifications = Notifications(self, "Notifications", account=config.security_account,
                                      email=config.notification_email)
        table = IncidentTable(self, "Incidents", table_name=config.incident_table_name).table
        environment = function_environment(config, partition=partition, table_name=table.table_name,
                                           topic_arn=notifications.topic.topic_arn)
        self.functions = ResponderFunctions(
            self, "Functions",
            environment=environment,
            account=config.security_account,
            member_accounts=config.member_accounts,
            forensics_account=config.forensics_account,
            table_arn=table.table_arn,
            topic_arn=notifications.topic.topic_arn,
            topic_key=notifications.key,
            executions_arn=policies.executions_arn(partition, config.region, config.security_account,
                                                   STATE_MACHINE_NAME),
            secrets_arn=policies.release_secrets_arn(partition, config.region, config.security_account),
            log_retention=retention,
            log_level=config.log_level,
            protected_tag=config.protected_tag,
            trail=trail_table(config, partition),
            organization=(config.organization.organization_id,
                          (config.forensics_account, config.security_account),
                          config.organization.resource_org_paths) if config.organization else None,
        )
        if config.trail_table:  # runbook: "the queries are pre-saved"
            TrailQueries(self, "TrailQueries", database=config.athena_database, table=config.athena_table,
                         workgroup=config.athena_workgroup, date_partition=config.athena_date_partition)
        machine = ContainmentStateMachine(self, "Containment", functions=self.functions.functions,
                                          log_retention=retention, account=config.security_account,
                                          region=config.region)
        Tags.of(machine.role).add(config.protected_tag, "true")
        acknowledge(machine.role, "AwsSolutions-IAM5[Resource::*]",
                    "Added by CDK for state machine logging (logs:CreateLogDelivery, GetLogDelivery, "
                    "UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, "
                    "DescribeResourcePolicies, DescribeLogGroups) and X-Ray tracing (xray:PutTraceSegments, "
                    "PutTelemetryRecords, GetSamplingRules, GetSamplingTargets): these actions support no "
                    "resource-level permissions.")
        trigger = GuardDutyTrigger(self, "Trigger", state_machine=machine.state_machine,
                                   protected_tag=config.protected_tag, account=config.security_account,
                                   region=config.region, forwarders=tuple(signal_forwarders(
                                       region=config.region, security_account=config.security_account,
                                       member_accounts=config.member_accounts)))
        ResponderAlarms(self, "Alarms", state_machine=machine.state_machine,
                        dead_letter_queue=trigger.dead_letter_queue, topic=notifications.topic)
        self.state_machine = machine.state_machine
        self.rule = trigger.rule
        CfnOutput(self, "StateMachineArn", value=machine.state_machine.state_machine_arn,
                  description="Start a manual (dry-run) execution here")
        CfnOutput(self, "NotificationTopicArn", value=notifications.topic.topic_arn)
        CfnOutput(self, "IncidentTableName", value=table.table_name)
        CfnOutput(self, "DeadLetterQueueUrl", value=trigger.dead_letter_queue.queue_url)


def trail_table(config: Config, partition: str) -> policies.TrailTable | policies.TrailLake | None:
    """The trail table (context keys athena*) or the Lake event data store the scope queries run on, or None."""
    if config.lake_event_data_store:
        return policies.TrailLake(event_data_store_arn=config.lake_event_data_store)
    if not config.trail_table:
        return None
    return policies.TrailTable(account=config.security_account, region=config.region,
                               database=config.athena_database, table=config.athena_table,
                               workgroup=config.athena_workgroup, trail_bucket=config.athena_trail_bucket,
                               output_location=config.athena_output_location, partition=partition)
