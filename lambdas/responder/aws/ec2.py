"""EC2 adapter for instance isolation. Reads return plain data; every change goes through the Journal.

The quarantine and flow-untracking security groups are created once per VPC and found again by the tag
``ir:purpose`` (create-or-reuse), so a second run creates nothing. A group is never found by its name: each is
created under a name with a random suffix (``ir-quarantine-1f3a9c2e``), so a group someone else named
``ir-quarantine`` can neither block the isolation (``InvalidGroup.Duplicate``) nor be mistaken for ours.

Eventual consistency (EC2 API reference, "Eventual consistency in the Amazon EC2 API"): a group just created may
answer ``InvalidGroup.NotFound`` for a moment - AWS's own example. Calls that use a group this adapter created in
the same invocation retry that code with back-off (``SETTLE_DELAYS``, about 15 s in all) before it counts.
"""
from __future__ import annotations

import secrets
from datetime import timezone
from typing import Any

from botocore.exceptions import ClientError

from responder.arns import GROUP_NAMES, PURPOSE_TAG, QUARANTINE, UNTRACK
from responder.aws.retry import RetryingClient
from responder.errors import error_code
from responder.journal import Journal

READ_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeSubnets",
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
    "ec2:CreateNetworkAclEntry",  # deny entries for the instance's own addresses (responder.network_acl)
    # ReplaceIamInstanceProfileAssociation passes the deny-all profile's role to EC2: the stack scopes this
    # grant to that one role (condition iam:PassedToService = ec2.amazonaws.com).
    "iam:PassRole",
)
MEMBER_ACTIONS = READ_ACTIONS + CHANGE_ACTIONS
# What a release (responder.release) reads and undoes through the release role: the interfaces' groups, the
# profile association (passing the original profile's role), the deny entries the isolation added.
MEMBER_RELEASE_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeNetworkAcls",
    "ec2:ModifyNetworkInterfaceAttribute",
    "ec2:ReplaceIamInstanceProfileAssociation",
    "ec2:DeleteNetworkAclEntry",
    "iam:PassRole",  # the original profile's role (stacks/policies.py member_release_policy)
)
# What Triage reads through the read-only member role (launch_times of an attack sequence's group instances).
MEMBER_READ_ACTIONS = ("ec2:DescribeInstances",)

GROUP_DESCRIPTIONS = {
    QUARANTINE: "Incident response quarantine: no traffic except the responder's isolation CIDRs",
    UNTRACK: "Incident response: allow-all for a moment so tracked flows become untracked, then quarantine",
}
GONE = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")
NOT_YET = ("InvalidGroup.NotFound",)  # a group this invocation created, not visible everywhere yet
SETTLE_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between attempts: ~15.75 s at most
ATTRIBUTE_KEYS = {
    "disableApiTermination": "DisableApiTermination",
    "instanceInitiatedShutdownBehavior": "InstanceInitiatedShutdownBehavior",
}


def group_name(purpose: str) -> str:
    """A fresh name for a responder group: the purpose's prefix and a random suffix (never chosen by input)."""
    return f"{GROUP_NAMES[purpose]}-{secrets.token_hex(4)}"


def mentions(params: dict, ids: set[str]) -> bool:
    """Whether a call's parameters name one of `ids` (GroupId, Groups, GroupIds)."""
    named = {params.get("GroupId"), *(params.get("Groups") or ()), *(params.get("GroupIds") or ())}
    return bool(named & ids)


class Ec2:
    def __init__(self, client: Any, journal: Journal, *, sleep=None):
        self._raw = client
        self.created: set[str] = set()  # groups this invocation created: "not found" means "not yet"
        self._c = RetryingClient(client, NOT_YET, SETTLE_DELAYS, sleep=sleep,
                                 when=lambda operation, params: mentions(params, self.created))
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

    def launch_times(self, instance_ids: list[str]) -> dict[str, str]:
        """{instance id: LaunchTime (ISO 8601, UTC)} of the instances EC2 knows (DescribeInstances, 1000 ids per
        call, every page); an instance that is gone is absent."""
        found: dict[str, str] = {}
        for start in range(0, len(instance_ids), 1000):
            ids, token = instance_ids[start:start + 1000], None
            while True:
                try:
                    page = self._c.describe_instances(InstanceIds=ids, **({"NextToken": token} if token else {}))
                except ClientError as exc:
                    if error_code(exc) not in GONE:
                        raise
                    if len(ids) > 1:  # an id of the batch is gone: ask one by one
                        for one in ids:
                            found.update(self.launch_times([one]))
                    break
                for reservation in page.get("Reservations", []):
                    for instance in reservation.get("Instances", []):
                        when = instance.get("LaunchTime")
                        found[instance["InstanceId"]] = (when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                                                         if hasattr(when, "astimezone") else str(when or ""))
                token = page.get("NextToken")
                if not token:
                    break
        return found

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
        """These groups with their rules (groups just created are retried until visible)."""
        return self._c.describe_security_groups(GroupIds=sorted(set(group_ids))).get("SecurityGroups", [])

    def network_acls(self, vpc_ids: list[str]) -> list[dict]:
        """Every network ACL of these VPCs with its entries and subnet associations."""
        acls: list[dict] = []
        for page in self._c.get_paginator("describe_network_acls").paginate(
                Filters=[{"Name": "vpc-id", "Values": sorted(set(vpc_ids))}]):
            acls.extend(page.get("NetworkAcls", []))
        return acls

    def subnet_cidrs(self, vpc_ids: list[str]) -> dict[str, str]:
        """{subnet id: IPv4 CIDR} of these VPCs."""
        found: dict[str, str] = {}
        for page in self._c.get_paginator("describe_subnets").paginate(
                Filters=[{"Name": "vpc-id", "Values": sorted(set(vpc_ids))}]):
            found.update({s["SubnetId"]: s.get("CidrBlock", "") for s in page.get("Subnets", [])})
        return found

    def acls(self, acl_ids: list[str]) -> dict[str, dict]:
        """{network ACL id: the ACL with its entries} of those that still exist (a release's check)."""
        ids = sorted(set(acl_ids))
        try:
            return {a["NetworkAclId"]: a for a in self._c.describe_network_acls(NetworkAclIds=ids)["NetworkAcls"]}
        except ClientError as exc:
            if error_code(exc) != "InvalidNetworkAclID.NotFound":
                raise
        found: dict[str, dict] = {}
        for acl_id in ids if len(ids) > 1 else ():  # one of them is gone: ask one by one
            found.update(self.acls([acl_id]))
        return found

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
        """Create the responder's `purpose` group in the VPC under a fresh name, tagged at creation. Returns its
        id; None when planned (dry run). A name that is taken anyway (``InvalidGroup.Duplicate``: someone chose
        the same random suffix) is answered by one more attempt with another name."""
        for _ in range(2):
            name = group_name(purpose)
            response = self._j.call(
                self._c, "create_security_group", target=vpc_id, accept=("InvalidGroup.Duplicate",),
                GroupName=name, Description=GROUP_DESCRIPTIONS[purpose], VpcId=vpc_id,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                    {"Key": PURPOSE_TAG, "Value": purpose}, {"Key": "Name", "Value": name},
                    {"Key": "ir:created-for", "Value": incident_id}]}],
            )
            if self._j.dry_run:
                return None
            if response:
                self.created.add(response["GroupId"])
                return response["GroupId"]
        raise ClientError({"Error": {"Code": "InvalidGroup.Duplicate",
                                     "Message": f"two fresh group names were both taken in {vpc_id}"}},
                          "CreateSecurityGroup")

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

    def set_connection_tracking(self, interface_id: str, spec: dict) -> None:
        """Idle timeouts of the interface's tracked flows (ConnectionTrackingSpecification)."""
        self._j.call(self._c, "modify_network_interface_attribute", target=interface_id,
                     NetworkInterfaceId=interface_id, ConnectionTrackingSpecification=spec)

    def add_acl_entry(self, entry: dict) -> None:
        """One CreateNetworkAclEntry (`entry`: its parameters, from responder.network_acl.plan_entries)."""
        self._j.call(self._c, "create_network_acl_entry", target=f"{entry['NetworkAclId']}#{entry['RuleNumber']}"
                     f"{'-out' if entry['Egress'] else '-in'}", **entry)

    def replace_profile(self, association_id: str, profile_name: str, *, target: str) -> None:
        self._j.call(self._c, "replace_iam_instance_profile_association", target=target,
                     AssociationId=association_id, IamInstanceProfile={"Name": profile_name})

    def restore_profile(self, association_id: str, profile_arn: str, *, target: str) -> None:
        """A release: the association back to the instance's original profile (by ARN: the name may be reused)."""
        self._j.call(self._c, "replace_iam_instance_profile_association", target=target,
                     AssociationId=association_id, IamInstanceProfile={"Arn": profile_arn})

    def delete_acl_entry(self, acl_id: str, rule_number: int, egress: bool) -> None:
        """A release: one deny entry the isolation added (DeleteNetworkAclEntry: ACL, rule number, direction)."""
        self._j.call(self._c, "delete_network_acl_entry", target=f"{acl_id}#{rule_number}{'-out' if egress else '-in'}",
                     NetworkAclId=acl_id, RuleNumber=rule_number, Egress=egress)

    def tag(self, instance_id: str, tags: dict[str, str]) -> None:
        self._j.call(self._c, "create_tags", target=instance_id, Resources=[instance_id],
                     Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())])
