"""Auto Scaling adapter: take an instance out of its group without shrinking the group.

Auto Scaling detaches only instances that are ``InService`` or ``Standby`` (DetachInstances; any other state is
refused with ``ValidationError``). The lifecycle states (Auto Scaling API reference, LifecycleState) fall in four
kinds, see `responder.isolation.scaling_kind`: detachable now; on the way to a detachable state (``Pending``, ``Pending:Wait`` while a launch
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
# What a release (responder.release, restoreAutoScaling) reads and undoes through the release role.
MEMBER_RELEASE_ACTIONS = ("autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeAutoScalingGroups",
                          "autoscaling:AttachInstances")
# What Triage reads through the read-only member role (group_instances: an attack sequence's groups).
MEMBER_READ_ACTIONS = ("autoscaling:DescribeAutoScalingGroups",)
GROUP_NAMES_PER_CALL = 50  # DescribeAutoScalingGroups: AutoScalingGroupNames, at most 50 (MaxRecords up to 100)

CONTENTION = ("ResourceContention",)
CONTENTION_DELAYS = (1.0, 2.0, 4.0)


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

    def group(self, name: str) -> dict | None:
        """The group `name` (sizes, instances) or None if it no longer exists."""
        found = self._c.describe_auto_scaling_groups(AutoScalingGroupNames=[name]).get("AutoScalingGroups", [])
        return found[0] if found else None

    def attach(self, instance_id: str, group: str) -> None:
        """A release: the instance back into the group it was detached from (AttachInstances raises the desired
        capacity by one; refused by Auto Scaling above the group's MaxSize)."""
        self._j.call(self._c, "attach_instances", target=instance_id, InstanceIds=[instance_id],
                     AutoScalingGroupName=group)
