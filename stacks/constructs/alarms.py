"""Alarms that notify the topic: executions that failed, timed out or were aborted, and findings EventBridge could
not deliver (dead-lettered)."""
from __future__ import annotations

from aws_cdk import Duration, aws_cloudwatch as cloudwatch, aws_cloudwatch_actions as actions, aws_sns as sns
from aws_cdk import aws_sqs as sqs, aws_stepfunctions as sfn
from constructs import Construct

PERIOD = Duration.minutes(5)


class ResponderAlarms(Construct):
    def __init__(self, scope: Construct, id: str, *, state_machine: sfn.StateMachine, dead_letter_queue: sqs.IQueue,
                 topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        notify = actions.SnsAction(topic)
        metrics = {
            "ExecutionsFailed": (state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                                 "A containment execution failed: read its outcome and finish by hand what it "
                                 "could not do."),
            "ExecutionsTimedOut": (state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                                   "A containment execution timed out."),
            "ExecutionsAborted": (state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                                  "A containment execution was aborted (stopped by a person or a deployment)."),
            "FindingsDeadLettered": (dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"),
                "GuardDuty findings could not be delivered to the state machine: they wait in the dead-letter "
                "queue; start an execution for each by hand."),
        }
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (metric, description) in metrics.items():
            alarm = cloudwatch.Alarm(
                self, name,
                alarm_name=f"ir-responder-{name}",
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(notify)
            self.alarms[name] = alarm
