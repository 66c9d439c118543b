"""Elastic Load Balancing adapters: Classic Load Balancers (``elb``) and target groups (``elbv2``).

No API answers "where is this instance registered", so: one DescribeLoadBalancers listing (Classic load balancers
carry their instances), one DescribeTargetGroups listing (pages of 400), then DescribeTargetHealth for every target
group that can hold the instance:

* type ``instance`` in one of the instance's VPCs (an instance target must be in the target group's VPC);
* type ``ip`` in *any* VPC: an IP target can be registered from a peered VPC or over a Transit Gateway (then its
  AvailabilityZone is ``all``; ELB user guide, "Target type"), so the target group's VPC says nothing.

Target groups of the instance's VPCs come first, so a time budget that runs out leaves the least likely ones.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from responder.errors import error_code
from responder.journal import Journal

# Classic and v2 share the IAM prefix (and DescribeLoadBalancers is one action for both).
MEMBER_ACTIONS = (
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DeregisterTargets",
)

# What a release (responder.release) reads and undoes through the release role: the registrations it removed.
MEMBER_RELEASE_ACTIONS = (
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:RegisterTargets",
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

    def instances(self, name: str) -> list[str] | None:
        """The instance ids registered with the Classic load balancer `name`; None if it no longer exists."""
        try:
            found = self._c.describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"]
        except ClientError as exc:
            if error_code(exc) == "LoadBalancerNotFound":  # AccessPointNotFoundException's code
                return None
            raise
        return [i["InstanceId"] for lb in found for i in lb.get("Instances", [])] if found else None

    def register(self, name: str, instance_id: str) -> None:
        """A release: the instance back with the load balancer it was deregistered from."""
        self._j.call(self._c, "register_instances_with_load_balancer", target=name, LoadBalancerName=name,
                     Instances=[{"InstanceId": instance_id}])

    def deregister(self, name: str, instance_id: str) -> None:
        self._j.call(self._c, "deregister_instances_from_load_balancer", target=name, LoadBalancerName=name,
                     Instances=[{"InstanceId": instance_id}])


class TargetGroups:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    def candidates(self, vpc_ids: set[str]) -> list[dict]:
        """Target groups that can hold the instance (see the module docstring), those of its VPCs first."""
        found: list[dict] = []
        for page in self._c.get_paginator("describe_target_groups").paginate(PaginationConfig={"PageSize": 400}):
            for tg in page.get("TargetGroups", []):
                kind = tg.get("TargetType", "instance")
                if kind == "ip" or (kind == "instance" and tg.get("VpcId") in vpc_ids):
                    found.append(tg)
        return sorted(found, key=lambda tg: tg.get("VpcId") not in vpc_ids)

    def targets(self, target_group_arn: str) -> list[dict]:
        """Every registration of the target group with its state (TargetHealthDescriptions)."""
        return self._c.describe_target_health(TargetGroupArn=target_group_arn).get("TargetHealthDescriptions", [])

    def registered(self, target_group_arn: str) -> list[dict] | None:
        """The live registrations ({Id, Port}) of the target group; None if it no longer exists (a release's check)."""
        try:
            found = self.targets(target_group_arn)
        except ClientError as exc:
            if error_code(exc) == "TargetGroupNotFound":
                return None
            raise
        return [{k: d["Target"][k] for k in ("Id", "Port") if k in d.get("Target", {})} for d in found
                if (d.get("TargetHealth") or {}).get("State") != "draining"]

    def register(self, target_group_arn: str, targets: list[dict]) -> None:
        """A release: the registrations the isolation removed, with their ports (and zones)."""
        self._j.call(self._c, "register_targets", target=target_group_arn, TargetGroupArn=target_group_arn,
                     Targets=targets)

    def deregister(self, target_group_arn: str, targets: list[dict]) -> None:
        self._j.call(self._c, "deregister_targets", target=target_group_arn, TargetGroupArn=target_group_arn,
                     Targets=targets)
