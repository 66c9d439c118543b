"""EC2 gap: moto has no EBS Snapshot Lock (LockSnapshot, DescribeLockedSnapshots, UnlockSnapshot are not
implemented) and deletes any snapshot. Restored here as the EBS user guide ("Lock an Amazon EBS snapshot",
"Amazon EBS snapshot lock concepts") and the EC2 API reference (LockSnapshot, DescribeLockedSnapshots) describe it:

* a snapshot in the pending or completed state can be locked, in ``governance`` or ``compliance`` mode, for
  ``LockDuration`` days (1 to 36,500) or until ``ExpirationDate``; the answer carries ``LockState``
  (``governance``, ``compliance``, ``compliance-cooloff``, ``expired``), ``LockCreatedOn``, ``LockExpiresOn``...
* locking again: governance, or compliance within its cooling-off period, may change anything; compliance after
  it may only extend the lock;
* a locked snapshot cannot be deleted until its lock expires (the error code is not documented; ``SnapshotLocked``
  here - the responder's retention does not depend on it: it asks DescribeLockedSnapshots first);
* UnlockSnapshot works for governance, and for compliance only in its cooling-off period.

Time is the local clock (`moto.core.utils.utcnow`); `expire(snapshot_id)` lets a test age a lock.
"""
from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from typing import Any
from unittest import mock

# (account, region, snapshot id) -> lock
LOCKS: dict[tuple[str, str, str], dict[str, Any]] = {}
LOCKED_ERROR = "SnapshotLocked"


def reset() -> None:
    LOCKS.clear()


def _state(lock: dict[str, Any], now) -> str:
    if lock["LockExpiresOn"] <= now:
        return "expired"
    if lock["LockMode"] == "compliance" and lock.get("CoolOffPeriodExpiresOn") and lock["CoolOffPeriodExpiresOn"] > now:
        return "compliance-cooloff"
    return lock["LockMode"]


def expire(snapshot_id: str) -> None:
    """Test helper: the lock of `snapshot_id` (any account) has run out."""
    from moto.core.utils import utcnow

    for key, lock in LOCKS.items():
        if key[2] == snapshot_id:
            lock["LockExpiresOn"] = utcnow() - timedelta(seconds=1)


def install(stack: ExitStack) -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.exceptions import EC2ClientError, InvalidParameterValueError, InvalidSnapshotIdError
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    reset()
    stack.callback(reset)

    def _public(lock: dict[str, Any], now) -> dict[str, Any]:
        out = {k: v for k, v in lock.items() if k != "LockMode"}
        out["LockState"] = _state(lock, now)
        return out

    def lock_snapshot(self):
        account, region, now = self.current_account, self.region, utcnow()
        snapshot_id = self._get_param("SnapshotId")
        mode = self._get_param("LockMode")
        duration = self._get_param("LockDuration")
        cool_off = self._get_param("CoolOffPeriod")
        snapshot = ec2_backends[account][region].snapshots.get(snapshot_id)
        if snapshot is None or snapshot.owner_id != account:
            raise InvalidSnapshotIdError()
        if mode not in ("governance", "compliance"):
            raise InvalidParameterValueError(f"LockMode {mode}")
        if duration is None or not 1 <= int(duration) <= 36500:
            raise InvalidParameterValueError(f"LockDuration {duration}")
        if snapshot.status not in ("pending", "completed"):
            raise EC2ClientError("IncorrectState", f"The snapshot '{snapshot_id}' is in the {snapshot.status} state")
        key = (account, region, snapshot_id)
        current = LOCKS.get(key)
        expires = now + timedelta(days=int(duration))
        if current is not None and _state(current, now) == "compliance":
            if mode != "compliance" or expires < current["LockExpiresOn"]:
                raise EC2ClientError(LOCKED_ERROR, f"The snapshot '{snapshot_id}' is locked in compliance mode: "
                                                   "its lock can only be extended")
        lock = {"SnapshotId": snapshot_id, "OwnerId": account, "LockMode": mode, "LockDuration": int(duration),
                "LockCreatedOn": (current or {}).get("LockCreatedOn", now), "LockDurationStartTime": now,
                "LockExpiresOn": expires}
        if mode == "compliance" and cool_off:
            lock["CoolOffPeriod"] = int(cool_off)
            lock["CoolOffPeriodExpiresOn"] = now + timedelta(hours=int(cool_off))
        LOCKS[key] = lock
        return ActionResult(_public(lock, now))

    def describe_locked_snapshots(self):
        account, region, now = self.current_account, self.region, utcnow()
        ids = self._get_param("SnapshotIds", []) or []
        filters = self._filters_from_querystring()
        states = set(filters.get("lock-state", []))
        found = [_public(lock, now) for (a, r, sid), lock in sorted(LOCKS.items())
                 if a == account and r == region and (not ids or sid in ids)]
        if states:
            found = [lock for lock in found if lock["LockState"] in states]
        return ActionResult({"Snapshots": found})

    def unlock_snapshot(self):
        account, region, now = self.current_account, self.region, utcnow()
        snapshot_id = self._get_param("SnapshotId")
        key = (account, region, snapshot_id)
        lock = LOCKS.get(key)
        if lock is None:
            raise InvalidSnapshotIdError()
        if _state(lock, now) == "compliance":
            raise EC2ClientError(LOCKED_ERROR, f"The snapshot '{snapshot_id}' is locked in compliance mode and its "
                                               "cooling-off period has ended")
        LOCKS.pop(key)
        return ActionResult({"SnapshotId": snapshot_id})

    original_delete = EBSBackend.delete_snapshot

    def delete_snapshot(self, snapshot_id: str):
        lock = LOCKS.get((self.account_id, self.region_name, snapshot_id))
        if lock is not None and _state(lock, utcnow()) != "expired":
            raise EC2ClientError(LOCKED_ERROR, f"The snapshot '{snapshot_id}' is locked until "
                                               f"{lock['LockExpiresOn'].isoformat()} and cannot be deleted")
        LOCKS.pop((self.account_id, self.region_name, snapshot_id), None)
        return original_delete(self, snapshot_id)

    for name, fn in (("lock_snapshot", lock_snapshot), ("describe_locked_snapshots", describe_locked_snapshots),
                     ("unlock_snapshot", unlock_snapshot)):
        stack.enter_context(mock.patch.object(ElasticBlockStore, name, fn, create=True))
    stack.enter_context(mock.patch.object(EBSBackend, "delete_snapshot", delete_snapshot))
