"""EBS and EC2-snapshot gaps of moto, filled for the local runtime (see state_machines/gaps.py).

What AWS does and moto (5.2) does not, restored here so the evidence chain runs unchanged:

* **Snapshot lifecycle.** A new snapshot (CreateSnapshot(s), CopySnapshot) is ``pending`` and becomes
  ``completed`` later; moto makes it ``completed`` at once, so a wait loop would never run. Here it stays
  ``pending`` (Progress ``0%``) for `World.pending_polls` DescribeSnapshots calls that return it, then completes
  (or ends in ``error`` with a StateMessage, see `fail_snapshots`).
* **Key of an encrypted snapshot.** moto drops the volume's KmsKeyId on CreateSnapshot(s); AWS snapshots carry it.
* **Sharing across accounts.** moto stores createVolumePermission but the other account can neither see the
  snapshot (DescribeSnapshots) nor copy it (CopySnapshot looks only in the caller's account). Here a snapshot
  shared with an account is visible to it (SnapshotIds, RestorableByUserIds) and copyable by it; OwnerIds filters
  by owner (moto ignores it). A copy is owned by the copying account and carries its *own* KMS key: KmsKeyId if
  given, else the source key (same account) or the copying account's default EBS key. Copying an encrypted
  snapshot of another account whose key policy does not let the copying account use the key ends in ``error``
  ("the proper KMS permissions are not obtained", as DescribeSnapshots documents for StateMessage).
* **aws/ebs cannot be shared.** ModifySnapshotAttribute(add) on a snapshot encrypted under the AWS managed key
  fails with InvalidParameter, as in AWS.
* **ListSnapshotBlocks** fails in moto for snapshots made by EC2, ignores MaxResults / NextToken /
  StartingBlockIndex and reports BlockSize 512. Here every snapshot of a volume lists the same real, non-trivial
  block indices (deterministic per volume id and size: 30-70% of the volume's 512 KiB blocks, at most 50,000), so
  a copy lists what its source lists; pages honour MaxResults (100..10000), NextToken and StartingBlockIndex;
  BlockSize is 524288; a snapshot that is not ``completed`` is refused (ValidationException).

Test hooks (reset on every `local.aws()`): `set_pending_polls(n)`, `tamper_listing(account, volume_id)` (the
listing of that volume's snapshots *owned by that account* loses its last block: a forced digest mismatch),
`fail_snapshots(account, volume_id)` (new snapshots or copies of that volume in that account end in ``error``),
`not_yet_visible(*apis, calls=n)` (EC2 eventual consistency at exact calls, a context manager).
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator
from unittest import mock

BLOCK_SIZE = 524288
BLOCKS_PER_GIB = (1 << 30) // BLOCK_SIZE
MAX_LISTED = 50_000
KMS_USE = {"kms:*", "kms:Decrypt", "kms:CreateGrant", "kms:ReEncryptFrom", "kms:ReEncrypt*"}


@dataclass
class World:
    pending_polls: int = 1
    tampered: set[tuple[str, str]] = field(default_factory=set)
    failing: dict[tuple[str, str], str] = field(default_factory=dict)
    listings: dict[tuple[str, int], list[int]] = field(default_factory=dict)


WORLD = World()


def reset() -> None:
    global WORLD
    WORLD = World()


def set_pending_polls(n: int) -> None:
    """New snapshots and copies stay pending for `n` DescribeSnapshots calls that return them."""
    WORLD.pending_polls = max(0, int(n))


def tamper_listing(account: str, volume_id: str) -> None:
    """Snapshots of `volume_id` owned by `account` list one block less (a forced digest mismatch)."""
    WORLD.tampered.add((account, volume_id))


def fail_snapshots(account: str, volume_id: str, message: str = "Internal error during snapshot creation") -> None:
    """New snapshots or copies of `volume_id` made in `account` end in state `error`."""
    WORLD.failing[(account, volume_id)] = message


@contextmanager
def not_yet_visible(*apis: str, calls: int = 2) -> Iterator[dict[tuple[str, str], int]]:
    """EC2 eventual consistency at exact calls (AWS: "if you run a command to modify or describe the resource that
    you just created, its ID might not have propagated throughout the system, and you will get an error responding
    that the resource does not exist"). For every snapshot the handlers made (CreateSnapshots, CopySnapshot) or
    shared (ModifySnapshotAttribute add) inside the block, its first `calls` calls by a handler to each of `apis`
    (e.g. "ec2:CreateTags", "ec2:CopySnapshot") that name it fail with InvalidSnapshot.NotFound; a DescribeSnapshots
    filter simply leaves it out. Yields {(api, snapshot id): calls refused}. Calls of the local Step Functions engine
    and of the test itself are never touched."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    from state_machines import local

    fresh: set[str] = set()
    refused: dict[tuple[str, str], int] = {}
    original = BaseClient._make_api_call

    def named(operation: str, params: dict) -> list[str]:
        ids = list(params.get("SnapshotIds") or []) + list(params.get("Resources") or [])
        ids += [params[k] for k in ("SnapshotId", "SourceSnapshotId") if params.get(k)]
        ids += [v for f in params.get("Filters") or [] if f.get("Name") == "snapshot-id" for v in f.get("Values", [])]
        return [i for i in ids if i in fresh]

    def make_api_call(self, operation_name, api_params):
        api = f"{self.meta.service_model.signing_name}:{operation_name}"
        lagging = []
        if local._running_function() and api in apis:
            for sid in named(operation_name, api_params):
                if refused.get((api, sid), 0) < calls:
                    refused[(api, sid)] = refused.get((api, sid), 0) + 1
                    lagging.append(sid)
        if lagging and operation_name == "DescribeSnapshots" and not api_params.get("SnapshotIds"):
            response = original(self, operation_name, api_params)
            response["Snapshots"] = [s for s in response.get("Snapshots", []) if s["SnapshotId"] not in lagging]
            return response
        if lagging:
            raise ClientError({"Error": {"Code": "InvalidSnapshot.NotFound",
                                         "Message": f"The snapshot '{lagging[0]}' does not exist."},
                               "ResponseMetadata": {"RequestId": "not-yet-visible", "HTTPStatusCode": 400}},
                              operation_name)
        response = original(self, operation_name, api_params)
        if local._running_function():
            if operation_name == "CreateSnapshots":
                fresh.update(s["SnapshotId"] for s in response.get("Snapshots", []))
            elif operation_name == "CopySnapshot":
                fresh.add(response["SnapshotId"])
            elif operation_name == "ModifySnapshotAttribute" and api_params.get("OperationType") == "add":
                fresh.add(api_params["SnapshotId"])
        return response

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield refused


def listing(volume_id: str, size_gib: int) -> list[int]:
    """The written blocks of a volume: deterministic per volume id and size."""
    key = (volume_id, int(size_gib))
    if key not in WORLD.listings:
        rng = random.Random(int.from_bytes(hashlib.sha256(volume_id.encode()).digest()[:8], "big"))
        total = max(1, int(size_gib)) * BLOCKS_PER_GIB
        count = min(total, MAX_LISTED, max(1, int(total * (0.3 + 0.4 * rng.random()))))
        WORLD.listings[key] = sorted(rng.sample(range(total), count))
    return WORLD.listings[key]


# --------------------------------------------------------------------------------------------------------
def _lifecycle(snapshot: Any, account: str, *, error: str | None = None) -> None:
    """A new snapshot: pending now, final state after `pending_polls` describes."""
    message = error or WORLD.failing.get((account, snapshot.volume.id))
    snapshot._ir_final = "error" if message else "completed"
    snapshot._ir_message = message
    snapshot._ir_polls = WORLD.pending_polls
    snapshot.status = "pending"
    _tick(snapshot, count=False)


def _tick(snapshot: Any, *, count: bool = True) -> None:
    polls = getattr(snapshot, "_ir_polls", None)
    if polls is None or snapshot.status != "pending":
        return
    if polls <= 0:
        snapshot.status = snapshot._ir_final
        if snapshot._ir_message and snapshot.status == "error":
            snapshot.state_message = snapshot._ir_message
    elif count:
        snapshot._ir_polls = polls - 1


def _shared_with(snapshot: Any, account: str) -> bool:
    return account in snapshot.create_volume_permission_userids or "all" in snapshot.create_volume_permission_groups


def _visible(account: str, region: str) -> list[Any]:
    """Own snapshots, and snapshots of other accounts (same region) shared with `account`."""
    from moto.ec2.models import ec2_backends

    found = list(ec2_backends[account][region].snapshots.values())
    for other, other_region, backend in ec2_backends.iter_backends():
        if other != account and other_region == region:
            found += [s for s in backend.snapshots.values() if s.owner_id == other and _shared_with(s, account)]
    return found


def _kms_key(account: str, region: str, key_id: str | None) -> Any:
    from moto.kms.models import kms_backends

    if not key_id:
        return None
    if key_id.startswith("arn:"):
        account, region = key_id.split(":")[4], key_id.split(":")[3]
    try:
        return kms_backends[account][region].describe_key(key_id)
    except Exception:  # unknown key: AWS fails the copy asynchronously
        return None


def _usable_by(key: Any, account: str) -> bool:
    """Does the key policy let `account` use the key (simplified: an Allow naming the account or its root)?"""
    if key is None:
        return False
    if key.account_id == account:
        return True
    try:
        policy = json.loads(key.policy or "{}")
    except ValueError:
        return False
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        principals = (statement.get("Principal") or {})
        principals = principals.get("AWS", []) if isinstance(principals, dict) else principals
        principals = [principals] if isinstance(principals, str) else principals
        actions = statement.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions)
        if actions & KMS_USE and any(p in ("*", account, f"arn:aws:iam::{account}:root") for p in principals):
            return True
    return False


def _is_aws_managed_ebs_key(snapshot: Any) -> bool:
    from moto.kms.models import kms_backends

    if not snapshot.encrypted or not snapshot.kms_key_id:
        return False
    account, region = snapshot.ec2_backend.account_id, snapshot.ec2_backend.region_name
    try:
        default = kms_backends[account][region].describe_key("alias/aws/ebs")
    except Exception:
        return False
    return snapshot.kms_key_id in (default.arn, default.id)


def install(stack: ExitStack) -> None:
    from moto.core.exceptions import ServiceException
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ebs.models import EBSSnapshot, ebs_backends
    from moto.ebs.responses import EBSResponse
    from moto.ec2.exceptions import InvalidParameter, InvalidSnapshotIdError
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.elastic_block_store import EBSBackend, Snapshot
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.ec2.utils import generic_filter, random_snapshot_id

    reset()
    stack.callback(reset)

    class EbsError(ServiceException):
        pass

    # -- lifecycle and key of EC2 snapshots ----------------------------------------------------------------
    original_create = EBSBackend.create_snapshot

    def create_snapshot(self, volume_id, description, owner_id=None, from_ami=None):
        snapshot = original_create(self, volume_id, description, owner_id=owner_id, from_ami=from_ami)
        if from_ami is None and owner_id is None:
            if snapshot.volume.encrypted and snapshot.kms_key_id is None:
                snapshot.kms_key_id = snapshot.volume.kms_key_id
            _lifecycle(snapshot, self.account_id)
        return snapshot

    stack.enter_context(mock.patch.object(EBSBackend, "create_snapshot", create_snapshot))
    stack.enter_context(mock.patch.object(
        Snapshot, "progress", property(lambda s: "100%" if s.status == "completed" else "0%")))

    # -- sharing: aws/ebs cannot be shared -----------------------------------------------------------------
    original_add = EBSBackend.add_create_volume_permission

    def add_create_volume_permission(self, snapshot_id, user_ids, groups):
        snapshot = self.get_snapshot(snapshot_id)
        if _is_aws_managed_ebs_key(snapshot):
            raise InvalidParameter("Snapshots encrypted with the AWS Managed CMK can't be shared. "
                                   "Specify another snapshot.")
        return original_add(self, snapshot_id, user_ids, groups)

    stack.enter_context(mock.patch.object(EBSBackend, "add_create_volume_permission", add_create_volume_permission))

    # -- DescribeSnapshots: shared snapshots visible, OwnerIds / RestorableByUserIds honoured, lifecycle ticks --
    def describe_snapshots(self):
        account, region = self.current_account, self.region
        filters = self._filters_from_querystring()
        ids = self._get_param("SnapshotIds", []) or []
        owners = {account if o == "self" else o for o in (self._get_param("OwnerIds", []) or [])}
        restorable = {account if r == "self" else r for r in (self._get_param("RestorableByUserIds", []) or [])}
        found = _visible(account, region)
        if ids:
            found = [s for s in found if s.id in ids]
            if len({s.id for s in found}) < len(set(ids)):
                raise InvalidSnapshotIdError()
        if owners:
            found = [s for s in found if s.owner_id in owners]
        if restorable:
            found = [s for s in found if any(_shared_with(s, r) for r in restorable) or
                     (s.owner_id in restorable)]
        if filters:
            found = generic_filter(filters, found)
        for snapshot in found:
            _tick(snapshot)
        return ActionResult({"Snapshots": found})

    stack.enter_context(mock.patch.object(ElasticBlockStore, "describe_snapshots", describe_snapshots))

    # -- CopySnapshot: from a snapshot shared with the caller, under the caller's own key -------------------
    def copy_snapshot(self):
        account, region = self.current_account, self.region
        source_id = self._get_param("SourceSnapshotId")
        source_region = self._get_param("SourceRegion") or region
        description = self._get_param("Description")
        kms_key_id = self._get_param("KmsKeyId")
        encrypted = self._get_bool_param("Encrypted", False)
        tags = self._parse_tag_specification().get("snapshot", {})
        self.error_on_dryrun()
        source = next((s for s in _visible(account, source_region) if s.id == source_id), None)
        if source is None:
            raise InvalidSnapshotIdError()
        backend = ec2_backends[account][region]
        source_account = source.owner_id
        error = None
        key = None
        if source.encrypted or encrypted or kms_key_id:
            if kms_key_id:
                found = _kms_key(account, region, kms_key_id)
                key = found.arn if found is not None else kms_key_id
                if found is None:
                    error = f"The KMS key {kms_key_id} is not accessible"
            elif source_account == account and source.encrypted:
                key = source.kms_key_id
            else:
                key = backend.default_kms_key_id or backend._create_default_encryption_key()
        if source.encrypted and source_account != account:
            source_key = _kms_key(source_account, source_region, source.kms_key_id)
            if not _usable_by(source_key, account):
                error = (f"Given key ID is not accessible: the key policy of {source.kms_key_id} does not let "
                         f"account {account} use it")
        copy = Snapshot(backend, random_snapshot_id(), volume=source.volume, description=description,
                        encrypted=bool(key), kms_key_id=key)
        backend.snapshots[copy.id] = copy
        _lifecycle(copy, account, error=error)
        copy.add_tags(tags)
        return ActionResult({"SnapshotId": copy.id, "Tags": copy.tag_set})

    stack.enter_context(mock.patch.object(ElasticBlockStore, "copy_snapshot", copy_snapshot))

    # -- EBS direct API: ListSnapshotBlocks for EC2 snapshots, paginated, real block size ------------------
    original_ebs_init = EBSSnapshot.__init__

    def ebs_snapshot_init(self, account_id, snapshot):
        original_ebs_init(self, account_id, snapshot)
        self.block_size = BLOCK_SIZE

    stack.enter_context(mock.patch.object(EBSSnapshot, "__init__", ebs_snapshot_init))

    def list_snapshot_blocks(self):
        account, region = self.current_account, self.region
        snapshot_id = self._get_param("SnapshotId")
        token = self._get_param("NextToken")
        max_results = self._get_param("MaxResults")
        starting = self._get_param("StartingBlockIndex")
        max_results = 10000 if max_results is None else int(max_results)
        if not 100 <= max_results <= 10000:
            raise EbsError("ValidationException", "MaxResults must be between 100 and 10000")
        native = ebs_backends[account][region].snapshots.get(snapshot_id)
        if native is not None:
            indices, volume_size = sorted(native.blocks), native.volume_size
        else:
            snapshot = ec2_backends[account][region].snapshots.get(snapshot_id)
            if snapshot is None or snapshot.owner_id != account:
                raise EbsError("ResourceNotFoundException", f"The snapshot '{snapshot_id}' does not exist.")
            if snapshot.status != "completed":
                raise EbsError("ValidationException", f"The snapshot '{snapshot_id}' is not in a completed state.")
            volume_size = snapshot.volume.size
            indices = listing(snapshot.volume.id, volume_size)
            if (account, snapshot.volume.id) in WORLD.tampered:
                indices = indices[:-1]
        position = 0
        if token:
            try:
                decoded = json.loads(base64.b64decode(token))
                assert decoded["s"] == snapshot_id
                position = int(decoded["p"])
            except Exception:
                raise EbsError("ValidationException", "The pagination token is not valid.")
        elif starting is not None:
            import bisect

            position = bisect.bisect_left(indices, int(starting))
        page = indices[position:position + max_results]
        result: dict[str, Any] = {
            "Blocks": [{"BlockIndex": i, "BlockToken": f"AAAB{i:010d}"} for i in page],
            "ExpiryTime": (utcnow() + timedelta(hours=1)).timestamp(),
            "VolumeSize": volume_size,
            "BlockSize": BLOCK_SIZE,
        }
        if position + max_results < len(indices):
            result["NextToken"] = base64.b64encode(
                json.dumps({"s": snapshot_id, "p": position + max_results}).encode()).decode()
        # the wire response itself (rest-json): moto's generic serializer takes ~70 us per block
        return 200, {"Content-Type": "application/json"}, json.dumps(result)

    stack.enter_context(mock.patch.object(EBSResponse, "list_snapshot_blocks", list_snapshot_blocks))
