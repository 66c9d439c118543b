"""EC2 adapter of the forensic workstation (responder.workstation), in the forensics account through the forensics
role: the workstation instance, the forensic AMI, the incident's own snapshot copies, and the analysis volumes made
from them. Reads return plain data; every change goes through the Journal (dry run: planned, not made).

Evidence snapshots are only read and used as a volume's source here: no call of this adapter changes a snapshot.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from responder.arns import ec2_arn
from responder.errors import error_code
from responder.journal import Journal

# In the forensics account (stacks.policies.forensics_policy scopes each: volumes created only tagged
# ir:purpose=forensic-analysis from the responder's own copies, attached only to instances tagged
# ir:purpose=forensic-workstation, instances launched only from such an image of the account, tagged at launch).
FORENSICS_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeImages",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeSnapshots",
    "ec2:CreateVolume",
    "ec2:AttachVolume",
    "ec2:RunInstances",
    "ec2:CreateTags",  # tags at creation only (TagSpecifications of CreateVolume and RunInstances)
)
LIVE_STATES = ("pending", "running", "stopping", "stopped")
_NOT_FOUND = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "InvalidAMIID.NotFound",
              "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable", "InvalidSubnetID.NotFound",
              "InvalidSubnetID.Malformed")


def _tags(tags: dict[str, str], resource_type: str) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}]


class Workstations:
    def __init__(self, client: Any, journal: Journal, *, account: str, region: str, partition: str = "aws"):
        self._c = client
        self._j = journal
        self.account = account
        self.region = region
        self.partition = partition

    def arn(self, kind: str, resource_id: str) -> str:
        return ec2_arn(kind, resource_id, account=self.account, region=self.region, partition=self.partition)

    # -- reads ------------------------------------------------------------------------------------------
    def _missing(self, call: Any) -> Any:
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise

    def instance(self, instance_id: str) -> dict | None:
        """The instance as DescribeInstances answers it in this account, with its reservation's ``OwnerId``;
        None when this account has no such instance (another account's id answers NotFound here)."""
        found = self._missing(lambda: self._c.describe_instances(InstanceIds=[instance_id]))
        for reservation in (found or {}).get("Reservations", []):
            for item in reservation.get("Instances", []):
                if item.get("InstanceId") == instance_id:
                    return {**item, "OwnerId": reservation.get("OwnerId")}
        return None

    def launched(self, *, incident_id: str, image_id: str, purpose_tag: str, purpose: str) -> list[dict]:
        """Workstations launched for this incident from this image (found by their tags), not terminated."""
        filters = [{"Name": f"tag:{purpose_tag}", "Values": [purpose]},
                   {"Name": "tag:ir:incident", "Values": [incident_id]},
                   {"Name": "image-id", "Values": [image_id]},
                   {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
        out = []
        for page in self._c.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                out += [{**i, "OwnerId": reservation.get("OwnerId")} for i in reservation.get("Instances", [])]
        return sorted(out, key=lambda i: i["InstanceId"])

    def image(self, image_id: str) -> dict | None:
        """The image if this account owns it (``Owners=["self"]``): an image shared with or public to the account
        is not found."""
        found = self._missing(lambda: self._c.describe_images(ImageIds=[image_id], Owners=["self"]))
        images = [i for i in (found or {}).get("Images", []) if i.get("ImageId") == image_id]
        return images[0] if images else None

    def subnet(self, subnet_id: str) -> dict | None:
        """The subnet if it is this account's own (a subnet shared into the account is owned by another)."""
        found = self._missing(lambda: self._c.describe_subnets(SubnetIds=[subnet_id]))
        subnets = [s for s in (found or {}).get("Subnets", []) if s.get("SubnetId") == subnet_id]
        return subnets[0] if subnets else None

    def copies(self, incident_id: str) -> list[dict]:
        """The snapshots this account owns tagged with the incident (the evidence task's forensics copies)."""
        found: list[dict] = []
        for page in self._c.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=[{"Name": "tag:ir:incident", "Values": [incident_id]}]):
            found.extend(page.get("Snapshots", []))
        return found

    def volumes(self, *, incident_id: str, workstation_id: str, purpose_tag: str, purpose: str,
                workstation_tag: str) -> list[dict]:
        """The analysis volumes of this incident made for this workstation (found by their tags)."""
        filters = [{"Name": f"tag:{purpose_tag}", "Values": [purpose]},
                   {"Name": "tag:ir:incident", "Values": [incident_id]},
                   {"Name": f"tag:{workstation_tag}", "Values": [workstation_id]}]
        found: list[dict] = []
        for page in self._c.get_paginator("describe_volumes").paginate(Filters=filters):
            found.extend(page.get("Volumes", []))
        return found

    # -- changes ----------------------------------------------------------------------------------------
    def launch(self, *, image_id: str, instance_type: str, subnet_id: str, group_ids: list[str], key_name: str | None,
               tags: dict[str, str], token: str) -> dict | None:
        """One workstation from the image, tagged at launch, with no public IP address and IMDSv2 only. `token`
        (ClientToken) makes a retried launch return the same instance. None when planned."""
        interface: dict[str, Any] = {"DeviceIndex": 0, "SubnetId": subnet_id, "AssociatePublicIpAddress": False}
        if group_ids:
            interface["Groups"] = list(group_ids)
        params: dict[str, Any] = {
            "ImageId": image_id, "InstanceType": instance_type, "MinCount": 1, "MaxCount": 1,
            "NetworkInterfaces": [interface], "ClientToken": token,
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "TagSpecifications": _tags(tags, "instance"),
        }
        if key_name:
            params["KeyName"] = key_name
        response = self._j.call(self._c, "run_instances", target=self.arn("image", image_id), **params)
        return (response or {}).get("Instances", [None])[0] if response else None

    def create_volume(self, *, snapshot_id: str, zone: str, tags: dict[str, str], token: str) -> dict | None:
        """A volume from the snapshot in `zone` (gp3; the copy's encryption and key carry over), tagged at
        creation. `token` (ClientToken): a retried call returns the same volume. None when planned."""
        return self._j.call(self._c, "create_volume", target=self.arn("snapshot", snapshot_id),
                            SnapshotId=snapshot_id, AvailabilityZone=zone, VolumeType="gp3", ClientToken=token,
                            TagSpecifications=_tags(tags, "volume"))

    def attach(self, *, volume_id: str, instance_id: str, device: str) -> dict | None:
        return self._j.call(self._c, "attach_volume", target=self.arn("volume", volume_id), VolumeId=volume_id,
                            InstanceId=instance_id, Device=device)
