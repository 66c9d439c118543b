"""Block-list hashing over a synthetic 16 TiB listing: 33,554,432 blocks of 512 KiB in ListSnapshotBlocks pages of
10,000, served by a stubbed EBS client, hashed by the production code (responder.aws.ebs.EbsBlocks ->
responder.blocklist.hash_listing), split over several "invocations" that resume from the JSON state a Lambda would
return. Prints CPU seconds, peak memory growth, and the ratio to plain hashlib over the same canonical bytes (the
digests must be equal).

    .venv/bin/python -m bench.hash_blocklist                  # the full 16 TiB listing
    .venv/bin/python -m bench.hash_blocklist --blocks 1000000 # a quick run
    .venv/bin/python -m bench.hash_blocklist --engine python --blocks 200000   # the pure-Python fallback
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "lambdas")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from responder import blocklist  # noqa: E402
from responder.aws.ebs import EbsBlocks  # noqa: E402

TIB16_BLOCKS = 16 * 1024 * 1024 * 1024 * 1024 // 524288  # 33,554,432
TOKEN = "AAABBBCCCDDDEEEFFFGGGHHHIIIJJJKKKLLLMMMNNNOOOPPP"  # a block token's typical length; excluded from the hash


class SyntheticEbs:
    """A stubbed `ebs` client: every block of the volume written, pages of MaxResults blocks, built on demand."""

    def __init__(self, blocks: int):
        self.blocks = blocks
        self.volume_size = max(1, math.ceil(blocks * 524288 / (1 << 30)))
        self.requests = 0

    def list_snapshot_blocks(self, *, SnapshotId, MaxResults, NextToken=None, StartingBlockIndex=None):
        self.requests += 1
        start = int(NextToken) if NextToken else int(StartingBlockIndex or 0)
        end = min(self.blocks, start + MaxResults)
        page = {"Blocks": [{"BlockIndex": i, "BlockToken": TOKEN} for i in range(start, end)],
                "VolumeSize": self.volume_size, "BlockSize": 524288, "ExpiryTime": "2030-01-01T00:00:00Z"}
        if end < self.blocks:
            page["NextToken"] = str(end)
        return page


def cpu() -> float:
    return time.process_time()


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def stub_only(blocks: int, page_size: int) -> float:
    """CPU seconds of producing the pages alone (subtracted to show the hashing's own cost)."""
    stub, token, started = SyntheticEbs(blocks), None, cpu()
    while True:
        page = stub.list_snapshot_blocks(SnapshotId="snap-0", MaxResults=page_size, NextToken=token)
        token = page.get("NextToken")
        if not token:
            return cpu() - started


def production(blocks: int, page_size: int, slices: int, engine: type) -> tuple[dict, float, int, int]:
    """The production path, cut into `slices` invocations that resume from a JSON round-tripped state."""
    stub = SyntheticEbs(blocks)
    pages_total = math.ceil(blocks / page_size)
    per_slice = max(1, math.ceil(pages_total / slices))
    resume, invocations, largest_state = None, 0, 0
    started = cpu()
    while True:
        pages_left = [per_slice]

        def stop() -> bool:  # the Lambda's remaining time running out, every `per_slice` pages
            pages_left[0] -= 1
            return pages_left[0] <= 0

        result = blocklist.hash_listing(EbsBlocks(stub), "snap-0", resume=resume, stop=stop,
                                        page_size=page_size, backend=engine)
        invocations += 1
        if result["done"]:
            return result, cpu() - started, invocations, largest_state
        text = json.dumps(result["resume"])  # what the task returns and gets back after the Wait state
        largest_state = max(largest_state, len(text))
        resume = json.loads(text)


def plain_hashlib(blocks: int, page_size: int) -> tuple[str, float]:
    """Plain hashlib over the same canonical bytes, built from the same pages the same way."""
    stub, token, started = SyntheticEbs(blocks), None, cpu()
    sha = hashlib.sha256()
    first = True
    while True:
        page = stub.list_snapshot_blocks(SnapshotId="snap-0", MaxResults=page_size, NextToken=token)
        if first:
            sha.update(b"%d\n%d\n" % (page["VolumeSize"], page["BlockSize"]))
            first = False
        indices = [b["BlockIndex"] for b in page["Blocks"]]
        if indices:
            sha.update("\n".join(map(str, indices)).encode() + b"\n")
        token = page.get("NextToken")
        if not token:
            return "sha256:" + sha.hexdigest(), cpu() - started


def digest_only(blocks: int, page_size: int, engine: type) -> tuple[float, float]:
    """CPU seconds of the SHA-256 alone (engine vs hashlib) over the canonical bytes, pages prepared beforehand
    in chunks so that memory stays small."""
    engine_s = hashlib_s = 0.0
    sha, ref = engine(), hashlib.sha256()
    for start in range(0, blocks, page_size * 50):
        chunk = [blocklist.page_bytes(list(range(s, min(blocks, s + page_size))))
                 for s in range(start, min(blocks, start + page_size * 50), page_size)]
        t = cpu()
        for data in chunk:
            sha.update(data)
        engine_s += cpu() - t
        t = cpu()
        for data in chunk:
            ref.update(data)
        hashlib_s += cpu() - t
    assert sha.hexdigest() == ref.hexdigest()
    return engine_s, hashlib_s


def traced_peak(blocks: int, page_size: int, engine: type) -> float:
    """tracemalloc's peak (MiB) while hashing `blocks` blocks: Python allocations, one page at a time."""
    gc.collect()
    tracemalloc.start()
    blocklist.hash_listing(EbsBlocks(SyntheticEbs(blocks)), "snap-0", page_size=page_size, backend=engine)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / (1 << 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=TIB16_BLOCKS, help="blocks in the listing (16 TiB: %(default)s)")
    parser.add_argument("--page-size", type=int, default=blocklist.PAGE_SIZE)
    parser.add_argument("--slices", type=int, default=4, help="invocations the hash is split over (resumed)")
    parser.add_argument("--engine", choices=("auto", "openssl", "python"), default="auto")
    args = parser.parse_args(argv)
    engine = {"auto": blocklist.engine(), "openssl": blocklist.OpenSslSha256, "python": blocklist.PySha256}[args.engine]
    if engine is blocklist.OpenSslSha256 and blocklist.engine() is not blocklist.OpenSslSha256:
        print("libcrypto is not usable here: use --engine python")
        return 1
    blocks, page_size = args.blocks, args.page_size
    size_gib = SyntheticEbs(blocks).volume_size
    print(f"listing: {blocks:,} blocks x 512 KiB = {size_gib:,} GiB ({size_gib / 1024:.2f} TiB), "
          f"{math.ceil(blocks / page_size):,} pages of {page_size:,}; engine: {engine.name}; "
          f"python {sys.version.split()[0]}")

    gc.collect()
    rss_before = rss_mib()
    result, prod_s, invocations, largest_state = production(blocks, page_size, args.slices, engine)
    rss_growth = rss_mib() - rss_before
    reference, plain_s = plain_hashlib(blocks, page_size)
    stub_s = stub_only(blocks, page_size)
    sha_s, hashlib_s = digest_only(blocks, page_size, engine)
    peak_blocks = min(blocks, 50 * page_size)
    peak_small = traced_peak(min(blocks, 5 * page_size), page_size, engine)
    peak_large = traced_peak(peak_blocks, page_size, engine)

    equal = result["digest"] == reference
    print(f"digest: {result['digest']}  ({'equal to' if equal else 'DIFFERENT FROM'} plain hashlib)")
    print(f"resumed: {invocations} invocations, largest saved state {largest_state} bytes of JSON")
    print(f"CPU seconds, production path (stub pages -> EbsBlocks -> hash_listing): {prod_s:8.2f}")
    print(f"CPU seconds, plain hashlib over the same canonical bytes (same pages):   {plain_s:8.2f}"
          f"   ratio {prod_s / plain_s:.2f}")
    print(f"CPU seconds, building the stub's pages alone:                            {stub_s:8.2f}")
    print(f"CPU seconds net of the stub: production {prod_s - stub_s:.2f}, plain hashlib {plain_s - stub_s:.2f}"
          f"   ratio {(prod_s - stub_s) / max(plain_s - stub_s, 1e-9):.2f}")
    print(f"CPU seconds, SHA-256 alone over the canonical bytes: "
          f"{engine.name} {sha_s:.2f}, hashlib {hashlib_s:.2f}   ratio {sha_s / max(hashlib_s, 1e-9):.2f}")
    print(f"peak memory growth (max RSS) over the whole listing: {rss_growth:.1f} MiB")
    print(f"peak Python allocations (tracemalloc): {peak_small:.1f} MiB for {min(blocks, 5 * page_size):,} blocks, "
          f"{peak_large:.1f} MiB for {peak_blocks:,} blocks (flat: one page at a time)")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
