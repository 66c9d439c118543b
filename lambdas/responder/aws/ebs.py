"""EBS direct API adapter: one page of a snapshot's block list (ListSnapshotBlocks). Read-only.

The same adapter serves the member account (source snapshots and their re-encrypted copies) and the forensics
account (the forensics copies). Hashing the listing is `responder.blocklist`'s business.
"""
from __future__ import annotations

from typing import Any

# Only the block *list* is read (never GetSnapshotBlock: no block data leaves EBS).
MEMBER_ACTIONS = ("ebs:ListSnapshotBlocks",)
FORENSICS_ACTIONS = ("ebs:ListSnapshotBlocks",)


class EbsBlocks:
    def __init__(self, client: Any):
        self._c = client

    def list_page(self, snapshot_id: str, *, next_token: str | None = None, starting_index: int | None = None,
                  max_results: int = 10_000) -> dict:
        """One ListSnapshotBlocks page: ``{"Blocks": [{"BlockIndex", "BlockToken"}], "VolumeSize", "BlockSize",
        "NextToken"?, "ExpiryTime"}``."""
        params: dict[str, Any] = {"SnapshotId": snapshot_id, "MaxResults": max_results}
        if next_token:
            params["NextToken"] = next_token
        elif starting_index is not None:
            params["StartingBlockIndex"] = starting_index
        return self._c.list_snapshot_blocks(**params)
