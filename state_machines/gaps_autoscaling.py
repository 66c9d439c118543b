"""Auto Scaling gaps of moto, filled for the local runtime (see state_machines/gaps.py).

* ``DetachInstances`` detaches only instances in the ``InService`` or ``Standby`` state (Auto Scaling API
  reference, DetachInstances; user guide, "Detach or attach instances"); any other state is refused with
  ``ValidationError``. moto 5.2 detaches whatever it is given. Restored here.
* An instance's lifecycle state moves on its own (Pending -> Pending:Wait -> Pending:Proceed -> InService, into
  a warm pool, EnteringStandby -> Standby...). moto keeps every attached instance ``InService``. The switch
  `set_lifecycle(instance_id, *states)` gives the states the next DescribeAutoScalingInstances calls report, one
  per call, the last one staying; `reset()` clears them. Used by tests only, never by production code.
"""
from __future__ import annotations

from contextlib import ExitStack
from unittest import mock

DETACHABLE = ("InService", "Standby")
_STATES: dict[str, list[str]] = {}


def set_lifecycle(instance_id: str, *states: str) -> None:
    _STATES[instance_id] = list(states)


def reset() -> None:
    _STATES.clear()


def install(stack: ExitStack) -> None:
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.exceptions import ValidationError

    original_describe = AutoScalingBackend.describe_auto_scaling_instances
    original_detach = AutoScalingBackend.detach_instances

    def describe_auto_scaling_instances(self, instance_ids):
        found = original_describe(self, instance_ids)
        for state in found:
            queued = _STATES.get(state.instance.id)
            if queued:
                state.lifecycle_state = queued.pop(0) if len(queued) > 1 else queued[0]
        return found

    def detach_instances(self, group_name, instance_ids, should_decrement):
        group = self.autoscaling_groups[group_name]
        for state in group.instance_states:
            if state.instance.id in instance_ids and state.lifecycle_state not in DETACHABLE:
                raise ValidationError(f"The instance {state.instance.id} is not in InService or Standby.")
        return original_detach(self, group_name, instance_ids, should_decrement)

    stack.enter_context(mock.patch.object(AutoScalingBackend, "describe_auto_scaling_instances",
                                          describe_auto_scaling_instances))
    stack.enter_context(mock.patch.object(AutoScalingBackend, "detach_instances", detach_instances))
    stack.callback(reset)
