"""Auto Scaling adapter: take an instance out of its group without shrinking the group.

Auto Scaling detaches only instances that are ``InService`` or ``Standby`` (DetachInstances; any other state is
refused with ``ValidationError``). The lifecycle states (Auto Scaling API reference, LifecycleState) fall in four
kinds, see `kind`: detachable now; on the way to a detachable state (``Pending``, ``Pending:Wait`` while a launch
lifecycle hook runs, ``Pending:Proceed``, ``EnteringStandby``, a root-volume replacement...): wait and retry;
already leaving (detaching, terminating): nothing to do; in a warm pool (``Warmed:*``) or otherwise outside what
DetachInstances accepts: cannot be detached, recorded with the state.

``ResourceContention`` ("You already have a pending update to an Auto Scaling resource") is transient: retried here
with back-off, then raised as TransientAwsError so Step Functions retries the idempotent task.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from responder.aws.retry import RetryingClient
from responder.errors import TransientAwsError, error_code
from responder.journal import Journal

MEMBER_ACTIONS = ("autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                  "autoscaling:DetachInstances")
GROUP_NAMES_PER_CALL = 50  # DescribeAutoScalingGroups: AutoScalingGroupNames, at most 50 (MaxRecords up to 100)

DETACHABLE = ("InService", "Standby")
# Lifecycle states in which the instance is already leaving (or has left) its group.
LEAVING = ("Detaching", "Detached", "Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")
# On the way to InService or Standby: wait for it.
SETTLING = ("Pending", "Pending:Wait", "Pending:Proceed", "EnteringStandby", "Quarantined", "ReplacingRootVolume",
            "ReplacingRootVolume:Wait", "ReplacingRootVolume:Proceed", "RootVolumeReplaced")
CONTENTION = ("ResourceContention",)
CONTENTION_DELAYS = (1.0, 2.0, 4.0)


def kind(state: str | None) -> str:
    """'detach', 'wait', 'leaving' or 'stuck' (warm pool, retained, unknown) for a lifecycle state."""
    if state in DETACHABLE:
        return "detach"
    if state in SETTLING:
        return "wait"
    if state in LEAVING:
        return "leaving"
    return "stuck"


class AutoScaling:
    def __init__(self, client: Any, journal: Journal, *, sleep=None):
        self._c = RetryingClient(client, CONTENTION, CONTENTION_DELAYS, sleep=sleep,
                                 when=lambda operation, params: operation == "detach_instances")
        self._j = journal

    def membership(self, instance_id: str) -> dict | None:
        """{AutoScalingGroupName, LifecycleState, ...} of the instance, or None if it is in no group."""
        found = self._c.describe_auto_scaling_instances(InstanceIds=[instance_id]).get("AutoScalingInstances", [])
        return found[0] if found else None

    def group_instances(self, names: list[str]) -> dict[str, list[str]]:
        """{group name: its instance ids} as Auto Scaling reports them now (DescribeAutoScalingGroups, every page);
        a group that does not exist is absent from the answer."""
        found: dict[str, list[str]] = {}
        for start in range(0, len(names), GROUP_NAMES_PER_CALL):
            token = None
            while True:
                params: dict[str, Any] = {"AutoScalingGroupNames": names[start:start + GROUP_NAMES_PER_CALL],
                                          "MaxRecords": 100}
                if token:
                    params["NextToken"] = token
                page = self._c.describe_auto_scaling_groups(**params)
                for group in page.get("AutoScalingGroups", []):
                    found[group["AutoScalingGroupName"]] = [i["InstanceId"] for i in group.get("Instances", [])]
                token = page.get("NextToken")
                if not token:
                    break
        return found

    def detach(self, instance_id: str, group: str) -> bool:
        """Detach, keeping the desired capacity: the group launches a replacement, the service stays up. True when
        detached (or planned); False when Auto Scaling refused because the instance is not InService or Standby
        (any more: its state moved since it was read) - recorded as unchanged with the code, to be waited for."""
        try:
            response = self._j.call(self._c, "detach_instances", target=instance_id, accept=("ValidationError",),
                                    InstanceIds=[instance_id], AutoScalingGroupName=group,
                                    ShouldDecrementDesiredCapacity=False)
            return response is not None or self._j.dry_run
        except ClientError as exc:
            if error_code(exc) in CONTENTION:  # still busy after the retries here: Step Functions retries the task
                raise TransientAwsError(f"DetachInstances {instance_id}: ResourceContention") from exc
            raise
