"""Auto Scaling adapter: take an instance out of its group without shrinking the group."""
from __future__ import annotations

from typing import Any

from responder.journal import Journal

MEMBER_ACTIONS = ("autoscaling:DescribeAutoScalingInstances", "autoscaling:DetachInstances")

# Lifecycle states in which the instance is already leaving (or has left) its group.
LEAVING = ("Detaching", "Detached", "Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated")


class AutoScaling:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    def membership(self, instance_id: str) -> dict | None:
        """{AutoScalingGroupName, LifecycleState, ...} of the instance, or None if it is in no group."""
        found = self._c.describe_auto_scaling_instances(InstanceIds=[instance_id]).get("AutoScalingInstances", [])
        return found[0] if found else None

    def detach(self, instance_id: str, group: str) -> None:
        """Detach, keeping the desired capacity: the group launches a replacement, the service stays up."""
        self._j.call(self._c, "detach_instances", target=instance_id, InstanceIds=[instance_id],
                     AutoScalingGroupName=group, ShouldDecrementDesiredCapacity=False)
