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


def main(argv: list[str] | None = None) -> int:
    """``python -m responder.aws.ebs snap-... [--region R]``: print a snapshot's block-list digest
    (responder.blocklist), with the caller's own credentials."""
    import argparse

    import boto3

    from responder.blocklist import engine, hash_listing

    parser = argparse.ArgumentParser(description="SHA-256 of an EBS snapshot's canonical block list")
    parser.add_argument("snapshot_id")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    result = hash_listing(EbsBlocks(boto3.client("ebs", region_name=args.region)), args.snapshot_id)
    print(f"{result['digest']}  {args.snapshot_id} ({result['blocks']} blocks, engine {engine().name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
