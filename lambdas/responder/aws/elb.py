"""Elastic Load Balancing adapters: Classic Load Balancers (``elb``) and target groups (``elbv2``).

No API answers "where is this instance registered", so: one DescribeLoadBalancers listing (Classic load balancers
carry their instances), one DescribeTargetGroups listing, then DescribeTargetHealth only for the target groups that
can hold the instance (target type instance or ip, in one of the instance's VPCs).
"""
from __future__ import annotations

from typing import Any

from responder.journal import Journal

# Classic and v2 share the IAM prefix (and DescribeLoadBalancers is one action for both).
MEMBER_ACTIONS = (
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DeregisterTargets",
)


class ClassicLoadBalancers:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    def holding(self, instance_id: str) -> list[str]:
        """Names of the Classic load balancers the instance is registered with."""
        names: list[str] = []
        for page in self._c.get_paginator("describe_load_balancers").paginate():
            for lb in page.get("LoadBalancerDescriptions", []):
                if any(i.get("InstanceId") == instance_id for i in lb.get("Instances", [])):
                    names.append(lb["LoadBalancerName"])
        return names

    def deregister(self, name: str, instance_id: str) -> None:
        self._j.call(self._c, "deregister_instances_from_load_balancer", target=name, LoadBalancerName=name,
                     Instances=[{"InstanceId": instance_id}])


class TargetGroups:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    def candidates(self, vpc_ids: set[str]) -> list[dict]:
        """Target groups that can hold the instance: type instance or ip, in one of its VPCs."""
        found: list[dict] = []
        for page in self._c.get_paginator("describe_target_groups").paginate():
            for tg in page.get("TargetGroups", []):
                if tg.get("TargetType", "instance") in ("instance", "ip") and tg.get("VpcId") in vpc_ids:
                    found.append(tg)
        return found

    def targets(self, target_group_arn: str) -> list[dict]:
        """Every registration of the target group with its state (TargetHealthDescriptions)."""
        return self._c.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions", [])

    def deregister(self, target_group_arn: str, targets: list[dict]) -> None:
        self._j.call(self._c, "deregister_targets", target=target_group_arn, TargetGroupArn=target_group_arn,
                     Targets=targets)
