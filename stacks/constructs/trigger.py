"""The EventBridge rules that start the containment state machine: every GuardDuty finding of severity 4 and above
(`stacks.catalog.EVENT_PATTERN`), and the exposed-key signals (`stacks.catalog.SIGNAL_PATTERNS`: Trusted Advisor's
"Exposed Access Keys", AWS Health's AWS_RISK_CREDENTIALS_EXPOSED) as they arrive on the responder's default bus -
published there when the responder runs in their region, or forwarded by the member accounts' forwarding rules
(stacks.signal_forwarder_stack), which this bus lets in (`stacks.policies.signal_bus_statement`). Delivery is
retried; what cannot be delivered lands in an encrypted, TLS-only dead-letter queue (alarmed), so no finding is lost
silently."""
from __future__ import annotations

from aws_cdk import Aws, CfnResource, Duration, Tags, aws_events as events, aws_events_targets as targets, aws_iam as iam
from aws_cdk import aws_sqs as sqs, aws_stepfunctions as sfn
from constructs import Construct

from stacks import names, policies
from stacks.catalog import EVENT_PATTERN, SIGNAL_PATTERNS
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
                 account: str, region: str, forwarders: tuple[tuple[str, str], ...] = ()) -> None:
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
                policies.service_trust("events.amazonaws.com", source_account=account, source_arn=[
                    policies.rule_arn(Aws.PARTITION, region, account, name) for name in self.rule_names()])
                ["Statement"][0]["Condition"]),
            inline_policies={"start-containment": iam.PolicyDocument.from_json(
                policies.rule_target_policy(state_machine.state_machine_arn))},
        )
        Tags.of(self.role).add(protected_tag, "true")
        self.signal_rules: dict[str, events.Rule] = {}
        for suffix, pattern in SIGNAL_PATTERNS.items():
            self.signal_rules[suffix] = events.Rule(
                self, f"Signal-{suffix}",
                rule_name=names.signal_rule(suffix),
                description="Exposed-key events (Trusted Advisor, AWS Health) start the containment state machine",
                event_pattern=event_pattern(pattern),
            )
        for rule in (self.rule, *self.signal_rules.values()):
            rule.add_target(targets.SfnStateMachine(
                state_machine,
                role=self.role,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=self.RETRY_ATTEMPTS,
                max_event_age=self.MAX_EVENT_AGE,
            ))
        statement = policies.signal_bus_statement(
            partition=Aws.PARTITION, bus_arn=policies.event_bus_arn(Aws.PARTITION, region, account),
            security_account=account, forwarders=forwarders)
        # the raw resource: CDK's CfnEventBusPolicy warns about its deprecated Principal/Action/Condition properties
        # on every synth, even unset
        self.bus_policy = CfnResource(self, "SignalForwarders", type="AWS::Events::EventBusPolicy", properties={
            "StatementId": names.SIGNAL_BUS_STATEMENT, "EventBusName": "default", "Statement": statement,
        }) if statement else None

    @staticmethod
    def rule_names() -> list[str]:
        return [names.RULE_NAME, *(names.signal_rule(s) for s in SIGNAL_PATTERNS)]
