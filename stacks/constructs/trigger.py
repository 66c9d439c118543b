"""The EventBridge rule that starts the containment state machine for every GuardDuty finding of severity 4 and
above (`stacks.catalog.EVENT_PATTERN`). Delivery is retried; what cannot be delivered lands in an encrypted,
TLS-only dead-letter queue (alarmed), so no finding is lost silently."""
from __future__ import annotations

from aws_cdk import Aws, Duration, Tags, aws_events as events, aws_events_targets as targets, aws_iam as iam
from aws_cdk import aws_sqs as sqs, aws_stepfunctions as sfn
from constructs import Construct

from stacks import names, policies
from stacks.catalog import EVENT_PATTERN
from stacks.nag import acknowledge

# EventBridge pattern field -> CDK EventPattern property.
_FIELDS = {"source": "source", "detail-type": "detail_type", "detail": "detail", "account": "account",
           "region": "region", "resources": "resources", "id": "id", "time": "time", "version": "version"}


def event_pattern(pattern: dict) -> events.EventPattern:
    unknown = set(pattern) - set(_FIELDS)
    if unknown:
        raise ValueError(f"EVENT_PATTERN has fields the rule cannot express: {sorted(unknown)}")
    return events.EventPattern(**{_FIELDS[k]: v for k, v in pattern.items()})


class GuardDutyTrigger(Construct):
    RETRY_ATTEMPTS = names.RULE_RETRY_ATTEMPTS
    MAX_EVENT_AGE = Duration.seconds(names.RULE_MAX_EVENT_AGE_SECONDS)

    def __init__(self, scope: Construct, id: str, *, state_machine: sfn.IStateMachine, protected_tag: str,
                 account: str, region: str) -> None:
        super().__init__(scope, id)
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetterQueue",
            queue_name=names.DLQ_NAME,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letter_queue, "AwsSolutions-SQS3",
                    "This queue is itself the dead-letter queue of the EventBridge rule's target; a dead-letter "
                    "queue for it would add nothing (its depth is alarmed instead).")
        self.rule = events.Rule(
            self, "Rule",
            rule_name=names.RULE_NAME,
            description="GuardDuty findings of severity 4 and above start the containment state machine",
            event_pattern=event_pattern(EVENT_PATTERN),
        )
        self.role = iam.Role(
            self, "Role",
            role_name=names.RULE_ROLE_NAME,
            description="Lets the GuardDuty findings rule start the containment state machine",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                policies.service_trust("events.amazonaws.com", source_account=account,
                                       source_arn=policies.rule_arn(Aws.PARTITION, region, account))
                ["Statement"][0]["Condition"]),
            inline_policies={"start-containment": iam.PolicyDocument.from_json(
                policies.rule_target_policy(state_machine.state_machine_arn))},
        )
        Tags.of(self.role).add(protected_tag, "true")
        self.rule.add_target(targets.SfnStateMachine(
            state_machine,
            role=self.role,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=self.RETRY_ATTEMPTS,
            max_event_age=self.MAX_EVENT_AGE,
        ))
