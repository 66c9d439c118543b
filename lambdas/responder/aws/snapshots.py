"""EC2 snapshot adapter: every EC2/KMS call of the evidence chain, member side and forensics side alike.

Reads return plain data; changes go through the Journal (dry run = planned, not made). One `Snapshots` object
acts in one account (the member account through the member role, or the forensics account through the
forensics role): the API is the same on both sides, only the credentials differ.
"""
from __future__ import annotations

from typing import Any, Iterable

from botocore.exceptions import ClientError

from responder.arns import ec2_arn, tag_list
from responder.errors import error_code
from responder.journal import Journal

# KMS actions EC2 performs with the caller's credentials when it copies an encrypted snapshot or copies under a
# new key (CopySnapshot with KmsKeyId). The CDK roles should grant them only with kms:ViaService =
# ec2.<region>.amazonaws.com (and kms:CreateGrant only with kms:GrantIsForAWSResource = true).
KMS_VIA_EC2 = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
MEMBER_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSnapshotAttribute",
    "ec2:CreateSnapshots",
    "ec2:CreateTags",
    "ec2:CopySnapshot",
    "ec2:ModifySnapshotAttribute",
    "ec2:DeleteSnapshot",
    "kms:DescribeKey",  # resolves the sharing key alias to its ARN (a direct call, not via EC2)
    "ec2:DescribeLockedSnapshots",  # retention deletes only what no lock holds (`locked`)
) + KMS_VIA_EC2
FORENSICS_ACTIONS = (
    "ec2:DescribeSnapshots",
    "ec2:CopySnapshot",
    "ec2:CreateTags",
    "ec2:DeleteSnapshot",
    "ec2:LockSnapshot",  # every forensics copy is locked for the evidence retention period (`lock`)
    "ec2:DescribeLockedSnapshots",
) + KMS_VIA_EC2
LOCK_MODES = ("compliance", "governance")

_DESCRIBE_CHUNK = 200


def key_arn(kms: Any, key_id: str) -> str:
    """The ARN of a KMS key given by alias, id or ARN (kms:DescribeKey)."""
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]


class Snapshots:
    def __init__(self, client: Any, journal: Journal, *, account: str, region: str, partition: str = "aws"):
        self._c = client
        self._j = journal
        self.account = account
        self.region = region
        self.partition = partition

    # -- names ------------------------------------------------------------------------------------------
    def _arn(self, kind: str, resource_id: str) -> str:
        return ec2_arn(kind, resource_id, account=self.account, region=self.region, partition=self.partition)

    def snapshot_arn(self, snapshot_id: str) -> str:
        return self._arn("snapshot", snapshot_id)

    def volume_arn(self, volume_id: str) -> str:
        return self._arn("volume", volume_id)

    def instance_arn(self, instance_id: str) -> str:
        return self._arn("instance", instance_id)

    # -- reads ------------------------------------------------------------------------------------------
    def instance(self, instance_id: str) -> dict | None:
        try:
            reservations = self._c.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except ClientError as exc:
            if error_code(exc) in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
                return None
            raise
        found = [i for r in reservations for i in r.get("Instances", [])]
        return found[0] if found else None

    def volumes(self, volume_ids: Iterable[str]) -> dict[str, dict]:
        ids = sorted(set(volume_ids))
        if not ids:
            return {}
        found: dict[str, dict] = {}
        for page in self._c.get_paginator("describe_volumes").paginate(
                Filters=[{"Name": "volume-id", "Values": ids}]):
            found.update({v["VolumeId"]: v for v in page.get("Volumes", [])})
        return found

    def find(self, filters: list[dict]) -> list[dict]:
        """Snapshots this account owns that match the EC2 filters (e.g. tag:ir:incident, description)."""
        found: list[dict] = []
        for page in self._c.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters):
            found.extend(page.get("Snapshots", []))
        return found

    def describe(self, snapshot_ids: Iterable[str]) -> dict[str, dict]:
        """Current state of the given own snapshots; a missing id is simply absent (no NotFound error, which
        EC2's eventual consistency can raise right after a create)."""
        ids = sorted(set(snapshot_ids))
        found: dict[str, dict] = {}
        for start in range(0, len(ids), _DESCRIBE_CHUNK):
            chunk = ids[start:start + _DESCRIBE_CHUNK]
            for snapshot in self.find([{"Name": "snapshot-id", "Values": chunk}]):
                found[snapshot["SnapshotId"]] = snapshot
        return found

    def shared_with(self, snapshot_id: str) -> tuple[set[str], set[str]]:
        """(account ids, groups) with createVolumePermission on the snapshot."""
        perms = self._c.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")
        users = {p["UserId"] for p in perms.get("CreateVolumePermissions", []) if "UserId" in p}
        groups = {p["Group"] for p in perms.get("CreateVolumePermissions", []) if "Group" in p}
        return users, groups

    # -- changes ----------------------------------------------------------------------------------------
    def create_set(self, instance_id: str, description: str, tags: dict[str, str]) -> list[dict] | None:
        """One crash-consistent snapshot set of every EBS volume attached to the instance (None when planned)."""
        response = self._j.call(
            self._c, "create_snapshots", target=self.instance_arn(instance_id),
            InstanceSpecification={"InstanceId": instance_id, "ExcludeBootVolume": False},
            Description=description,
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
        )
        return None if response is None else response.get("Snapshots", [])

    def copy(self, source_id: str, *, source_region: str, description: str, kms_key_id: str,
             tags: dict[str, str], target: str) -> str | None:
        """Copy a snapshot (own, or shared with this account) encrypted under `kms_key_id`, tagged at creation."""
        response = self._j.call(
            self._c, "copy_snapshot", target=target, SourceSnapshotId=source_id, SourceRegion=source_region,
            Description=description, Encrypted=True, KmsKeyId=kms_key_id,
            TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list(tags)}],
        )
        return None if response is None else response["SnapshotId"]

    def share(self, snapshot_id: str, account: str) -> None:
        """createVolumePermission for one account id - never a group (never `all`)."""
        self._j.call(self._c, "modify_snapshot_attribute", target=self.snapshot_arn(snapshot_id),
                     SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add",
                     UserIds=[account])

    def unshare(self, snapshot_id: str, account: str) -> None:
        self._j.call(self._c, "modify_snapshot_attribute", target=self.snapshot_arn(snapshot_id),
                     SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="remove",
                     UserIds=[account])

    def tag(self, snapshot_id: str, tags: dict[str, str]) -> None:
        self._j.call(self._c, "create_tags", target=self.snapshot_arn(snapshot_id), Resources=[snapshot_id],
                     Tags=tag_list(tags))

    def lock(self, snapshot_id: str, *, mode: str, days: int) -> dict | None:
        """EBS Snapshot Lock: `mode` compliance (nobody can delete it or shorten the lock, root included) or
        governance, for `days`. Locking again with the same settings changes nothing. None when planned."""
        mode = mode.lower()
        if mode not in LOCK_MODES:
            raise ValueError(f"snapshot lock mode must be one of {LOCK_MODES}, not {mode!r}")
        response = self._j.call(self._c, "lock_snapshot", target=self.snapshot_arn(snapshot_id),
                                SnapshotId=snapshot_id, LockMode=mode, LockDuration=int(days))
        if response is None:
            return None
        return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in response.items()
                if k in ("LockState", "LockDuration", "LockCreatedOn", "LockExpiresOn", "LockDurationStartTime")}

    def locked(self, snapshot_ids: Iterable[str]) -> dict[str, dict]:
        """snapshot id -> its lock ({LockState, LockExpiresOn, ...}) for the ids a lock still holds (state
        compliance, compliance-cooloff or governance; an `expired` lock holds nothing)."""
        ids = list(dict.fromkeys(snapshot_ids))
        found: dict[str, dict] = {}
        for start in range(0, len(ids), _DESCRIBE_CHUNK):
            response = self._c.describe_locked_snapshots(SnapshotIds=ids[start:start + _DESCRIBE_CHUNK])
            for lock in response.get("Snapshots", []):
                if lock.get("LockState") != "expired":
                    found[lock["SnapshotId"]] = lock
        return found

    def delete(self, snapshot_id: str) -> None:
        self._j.call(self._c, "delete_snapshot", target=self.snapshot_arn(snapshot_id), SnapshotId=snapshot_id)
