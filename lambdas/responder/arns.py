"""The conversions isolation and evidence both need: EC2 ARNs, tag lists and maps, the EBS volumes of an instance;
and the names of the responder's own security groups (isolation decides with them, the EC2 adapter writes them).
Pure functions on plain data (no AWS call, no import of `responder.aws`)."""
from __future__ import annotations

from typing import Any, Iterable

PURPOSE_TAG = "ir:purpose"  # on the responder's security groups: found by this tag, never by name
QUARANTINE = "quarantine"
UNTRACK = "untrack-flows"
GROUP_NAMES = {QUARANTINE: "ir-quarantine", UNTRACK: "ir-untrack-flows"}  # name prefixes: a suffix is added


def ec2_arn(kind: str, resource_id: str, *, account: str, region: str, partition: str = "aws") -> str:
    """`arn:<partition>:ec2:<region>:<account>:<kind>/<id>` (kind: instance, volume, snapshot...)."""
    return f"arn:{partition}:ec2:{region}:{account}:{kind}/{resource_id}"


def instance_arn(incident: dict, instance_id: str) -> str:
    """The ARN of an instance of the incident's account and region."""
    return ec2_arn("instance", instance_id, account=incident["accountId"], region=incident["region"],
                   partition=incident.get("partition", "aws"))


def arn_account(arn: str | None) -> str | None:
    """The account id of an ARN, or None if it is not an ARN."""
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else None


def tag_map(tags: Iterable[dict] | None) -> dict[str, str]:
    """EC2's `[{"Key", "Value"}]` as a dict."""
    return {t["Key"]: t["Value"] for t in tags or []}


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """A dict as EC2's `[{"Key", "Value"}]`."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ebs_volumes(instance: dict) -> list[dict[str, Any]]:
    """The EBS volumes attached to a DescribeInstances instance, in device order:
    ``[{"volumeId", "deviceName", "deleteOnTermination"}]`` (instance store volumes have no volume id)."""
    found = [{"volumeId": m["Ebs"]["VolumeId"], "deviceName": m.get("DeviceName", ""),
              "deleteOnTermination": m["Ebs"].get("DeleteOnTermination")}
             for m in instance.get("BlockDeviceMappings") or [] if (m.get("Ebs") or {}).get("VolumeId")]
    return sorted(found, key=lambda v: (v["deviceName"], v["volumeId"]))
