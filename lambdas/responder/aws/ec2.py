"""EC2 adapter for instance isolation. Reads return plain data; every change goes through the Journal.

The quarantine and flow-untracking security groups are created once per VPC and found again by the tag
``ir:purpose`` (create-or-reuse), so a second run creates nothing.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from responder.errors import error_code
from responder.journal import Journal

READ_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeIamInstanceProfileAssociations",
)
CHANGE_ACTIONS = (
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",  # also needed to tag a group at creation (TagSpecifications)
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:ReplaceIamInstanceProfileAssociation",
    # ReplaceIamInstanceProfileAssociation passes the deny-all profile's role to EC2: the stack scopes this
    # grant to that one role (condition iam:PassedToService = ec2.amazonaws.com).
    "iam:PassRole",
)
MEMBER_ACTIONS = READ_ACTIONS + CHANGE_ACTIONS

PURPOSE_TAG = "ir:purpose"
QUARANTINE = "quarantine"
UNTRACK = "untrack-flows"
GROUP_NAMES = {QUARANTINE: "ir-quarantine", UNTRACK: "ir-untrack-flows"}
GROUP_DESCRIPTIONS = {
    QUARANTINE: "Incident response quarantine: no traffic except the responder's isolation CIDRs",
    UNTRACK: "Incident response: allow-all for a moment so tracked flows become untracked, then quarantine",
}
GONE = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")
ATTRIBUTE_KEYS = {
    "disableApiTermination": "DisableApiTermination",
    "instanceInitiatedShutdownBehavior": "InstanceInitiatedShutdownBehavior",
}


class Ec2:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    # -- reads -----------------------------------------------------------------------------------------
    def describe_instance(self, instance_id: str) -> dict | None:
        """The instance as DescribeInstances returns it (interfaces, groups, profile, volumes, tags, state),
        or None if EC2 does not know it (any more)."""
        try:
            reservations = self._c.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError as exc:
            if error_code(exc) in GONE:
                return None
            raise
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                if instance.get("InstanceId") == instance_id:
                    return {**instance, "OwnerId": reservation.get("OwnerId")}
        return None

    def attribute(self, instance_id: str, name: str) -> Any:
        """`disableApiTermination` -> bool, `instanceInitiatedShutdownBehavior` -> 'stop' | 'terminate'."""
        response = self._c.describe_instance_attribute(InstanceId=instance_id, Attribute=name)
        return (response.get(ATTRIBUTE_KEYS[name]) or {}).get("Value")

    def isolation_groups(self, vpc_ids: list[str]) -> list[dict]:
        """The responder's groups (quarantine and untrack) in these VPCs, with their rules: one call."""
        groups: list[dict] = []
        paginator = self._c.get_paginator("describe_security_groups")
        filters = [{"Name": "vpc-id", "Values": sorted(set(vpc_ids))}, {"Name": "tag-key", "Values": [PURPOSE_TAG]}]
        for page in paginator.paginate(Filters=filters):
            groups.extend(page.get("SecurityGroups", []))
        return groups

    def groups(self, group_ids: list[str]) -> list[dict]:
        return self._c.describe_security_groups(GroupIds=sorted(set(group_ids))).get("SecurityGroups", [])

    def group_by_name(self, vpc_id: str, name: str) -> dict | None:
        found = self._c.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
        ).get("SecurityGroups", [])
        return found[0] if found else None

    def profile_associations(self, instance_id: str) -> list[dict]:
        """Current (associating / associated) instance-profile associations of the instance."""
        response = self._c.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance_id]},
                     {"Name": "state", "Values": ["associating", "associated"]}]
        )
        return response.get("IamInstanceProfileAssociations", [])

    # -- changes ---------------------------------------------------------------------------------------
    def enable_termination_protection(self, instance_id: str) -> None:
        self._j.call(self._c, "modify_instance_attribute", target=instance_id, InstanceId=instance_id,
                     DisableApiTermination={"Value": True})

    def stop_on_shutdown(self, instance_id: str) -> None:
        self._j.call(self._c, "modify_instance_attribute", target=instance_id, InstanceId=instance_id,
                     InstanceInitiatedShutdownBehavior={"Value": "stop"})

    def keep_volumes(self, instance_id: str, device_names: list[str]) -> None:
        """DeleteOnTermination off for these devices: one call for all of them."""
        self._j.call(self._c, "modify_instance_attribute", target=instance_id, InstanceId=instance_id,
                     BlockDeviceMappings=[{"DeviceName": d, "Ebs": {"DeleteOnTermination": False}}
                                          for d in device_names])

    def create_group(self, vpc_id: str, purpose: str, *, incident_id: str) -> str | None:
        """Create the responder's `purpose` group in the VPC (tagged at creation). Returns its id; None when
        planned (dry run) or when another run created it at the same moment (then look it up by name)."""
        name = GROUP_NAMES[purpose]
        response = self._j.call(
            self._c, "create_security_group", target=vpc_id, accept=("InvalidGroup.Duplicate",),
            GroupName=name, Description=GROUP_DESCRIPTIONS[purpose], VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                {"Key": PURPOSE_TAG, "Value": purpose}, {"Key": "Name", "Value": name},
                {"Key": "ir:created-for", "Value": incident_id}]}],
        )
        return response["GroupId"] if response else None

    def authorize(self, group_id: str, direction: str, permissions: list[dict]) -> None:
        operation = "authorize_security_group_ingress" if direction == "ingress" else "authorize_security_group_egress"
        self._j.call(self._c, operation, target=group_id, GroupId=group_id, IpPermissions=permissions)

    def revoke(self, group_id: str, direction: str, permissions: list[dict]) -> None:
        operation = "revoke_security_group_ingress" if direction == "ingress" else "revoke_security_group_egress"
        self._j.call(self._c, operation, target=group_id, GroupId=group_id, IpPermissions=permissions)

    def set_interface_groups(self, interface_id: str, group_ids: list[str]) -> None:
        """The call EC2 documents for one interface: the new set replaces the interface's groups."""
        self._j.call(self._c, "modify_network_interface_attribute", target=interface_id,
                     NetworkInterfaceId=interface_id, Groups=group_ids)

    def replace_profile(self, association_id: str, profile_name: str, *, target: str) -> None:
        self._j.call(self._c, "replace_iam_instance_profile_association", target=target,
                     AssociationId=association_id, IamInstanceProfile={"Name": profile_name})

    def tag(self, instance_id: str, tags: dict[str, str]) -> None:
        self._j.call(self._c, "create_tags", target=instance_id, Resources=[instance_id],
                     Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])
