"""Block-list digest: canonical serialisation (known answers), SHA-256 engines with exportable state, streaming over
pages with a stubbed EBS client, resuming."""
from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

from responder import blocklist
from responder.aws.ebs import EbsBlocks
from responder.blocklist import BlockListError, BlockListHash, PySha256, hash_listing

# sha256 of b"8\n524288\n0\n1\n4096\n", computed once with `printf '8\n524288\n0\n1\n4096\n' | sha256sum`
KNOWN = "sha256:e8849c05084703895ff4bc4a7442e85af2b477f7de98926b8945be719672bbde"
# sha256 of b"1\n524288\n" (a 1 GiB volume without written blocks)
KNOWN_EMPTY = "sha256:" + hashlib.sha256(b"1\n524288\n").hexdigest()


class StubEbs:
    """Stands in for the boto3 `ebs` client: serves prepared pages, checks the request like the service would."""

    def __init__(self, pages: list[list[int]], *, volume_size: int = 8, block_size: int = 524288,
                 expire_tokens: bool = False):
        self.pages = pages
        self.volume_size, self.block_size = volume_size, block_size
        self.calls: list[dict] = []
        self.expire_tokens = expire_tokens  # tokens issued by an earlier "session" are refused
        self.issued: set[str] = set()

    def list_snapshot_blocks(self, **params):
        self.calls.append(params)
        assert params["SnapshotId"] == "snap-0123456789abcdef0"
        assert 100 <= params["MaxResults"] <= 10000
        assert not ("NextToken" in params and "StartingBlockIndex" in params)
        if "NextToken" in params:
            if self.expire_tokens and params["NextToken"] not in self.issued:
                raise ClientError({"Error": {"Code": "ValidationException", "Message": "token expired"}},
                                  "ListSnapshotBlocks")
            number = int(params["NextToken"][1:])
        elif "StartingBlockIndex" in params:
            start = params["StartingBlockIndex"]
            number = next(n for n, page in enumerate(self.pages) if not page or page[-1] >= start)
            page = [i for i in self.pages[number] if i >= start]
            return self._page(number, page)
        else:
            number = 0
        return self._page(number, self.pages[number])

    def _page(self, number: int, indices: list[int]) -> dict:
        page = {"Blocks": [{"BlockIndex": i, "BlockToken": f"tok{i}"} for i in indices],
                "VolumeSize": self.volume_size, "BlockSize": self.block_size, "ExpiryTime": "2030-01-01T00:00:00Z"}
        if number + 1 < len(self.pages):
            page["NextToken"] = f"T{number + 1}"
            self.issued.add(page["NextToken"])
        return page


SNAP = "snap-0123456789abcdef0"
PAGES = [[0, 1, 2, 17], [], [18, 4095], [], [], [4096, 8000, 16383], []]
ALL = [i for page in PAGES for i in page]


# -- the canonical serialisation -----------------------------------------------------------------------
def test_canonical_serialisation_known_answer():
    assert blocklist.canonical(8, 524288, [0, 1, 4096]) == b"8\n524288\n0\n1\n4096\n"
    assert blocklist.digest_of(8, 524288, [0, 1, 4096]) == KNOWN


def test_empty_listing_is_the_header_alone():
    running = BlockListHash()
    running.feed({"Blocks": [], "VolumeSize": 1, "BlockSize": 524288})
    assert running.digest() == KNOWN_EMPTY
    assert running.blocks == 0


def test_streamed_pages_give_the_known_answer_and_ignore_tokens():
    running = BlockListHash()
    running.feed({"Blocks": [{"BlockIndex": 0, "BlockToken": "a"}], "VolumeSize": 8, "BlockSize": 524288})
    running.feed({"Blocks": [], "VolumeSize": 8, "BlockSize": 524288, "NextToken": "x"})
    running.feed({"Blocks": [{"BlockIndex": 1, "BlockToken": "other"}, {"BlockIndex": 4096, "BlockToken": "c"}],
                  "VolumeSize": 8, "BlockSize": 524288, "ExpiryTime": "whenever"})
    assert running.digest() == KNOWN


@pytest.mark.parametrize("blocks, message", [
    ([3, 2], "strictly ascending"),
    ([2, 2], "strictly ascending"),
    ([-1, 2], "does not follow"),
    (["1", "2"], "integers"),
    ([1.0, 2.0], "integers"),
])
def test_non_canonical_pages_are_refused(blocks, message):
    running = BlockListHash()
    with pytest.raises(BlockListError, match=message):
        running.feed({"Blocks": [{"BlockIndex": b} for b in blocks], "VolumeSize": 8, "BlockSize": 524288})


def test_a_page_must_continue_after_the_previous_one():
    running = BlockListHash()
    running.feed({"Blocks": [{"BlockIndex": 5}], "VolumeSize": 8, "BlockSize": 524288})
    with pytest.raises(BlockListError, match="BlockIndex 5 does not follow 5"):
        running.feed({"Blocks": [{"BlockIndex": 5}], "VolumeSize": 8, "BlockSize": 524288})


def test_sizes_may_not_change_between_pages():
    running = BlockListHash()
    running.feed({"Blocks": [], "VolumeSize": 8, "BlockSize": 524288})
    with pytest.raises(BlockListError, match="changed between pages"):
        running.feed({"Blocks": [], "VolumeSize": 9, "BlockSize": 524288})
    with pytest.raises(BlockListError, match="VolumeSize must be a positive integer"):
        BlockListHash().feed({"Blocks": [], "BlockSize": 524288})


def test_no_digest_before_the_first_page():
    with pytest.raises(BlockListError, match="no page"):
        BlockListHash().digest()


# -- SHA-256 engines with exportable state -----------------------------------------------------------------
ENGINES = [PySha256] + ([blocklist.OpenSslSha256] if blocklist.engine() is blocklist.OpenSslSha256 else [])


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.name)
@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 4099])
def test_engine_matches_hashlib_and_resumes_at_every_kind_of_split(engine, size):
    data = os.urandom(size)
    for split in sorted({0, size // 3, size // 2, max(0, size - 1), size}):
        first = engine()
        first.update(data[:split])
        state = first.export()
        for resume_on in ENGINES:  # a state exported by one engine resumes on the other
            resumed = resume_on(state)
            resumed.update(data[split:])
            assert resumed.hexdigest() == hashlib.sha256(data).hexdigest()


def test_export_is_the_documented_portable_format():
    sha = PySha256()
    sha.update(b"x" * 70)
    version, words, length, pending = sha.export().split(":")
    assert (version, len(words), length, pending) == ("v1", 64, "70", (b"x" * 6).hex())


@pytest.mark.parametrize("state", ["v2:" + "0" * 64 + ":0:", "v1:abc:0:", "v1:" + "0" * 64 + ":3:00", "nonsense"])
def test_bad_states_are_refused(state):
    with pytest.raises(ValueError):
        PySha256(state)


def test_engine_selection_is_cached_and_self_tested():
    chosen = blocklist.engine()
    assert chosen is blocklist.engine()
    assert blocklist._self_test(chosen)


# -- streaming a listing through the EBS adapter (stubbed client) --------------------------------------------
def test_all_pages_are_read_following_next_token():
    stub = StubEbs(PAGES)
    result = hash_listing(EbsBlocks(stub), SNAP)
    assert result == {"done": True, "digest": blocklist.digest_of(8, 524288, ALL), "blocks": len(ALL),
                      "pages": len(PAGES), "volumeSize": 8, "blockSize": 524288}
    assert [c.get("NextToken") for c in stub.calls] == [None, "T1", "T2", "T3", "T4", "T5", "T6"]
    assert all(c["MaxResults"] == 10000 for c in stub.calls)


def test_a_listing_of_only_empty_pages_hashes_the_header():
    result = hash_listing(EbsBlocks(StubEbs([[], [], []], volume_size=1)), SNAP)
    assert result["digest"] == KNOWN_EMPTY and result["pages"] == 3


@pytest.mark.parametrize("stop_after", [1, 2, 3, 5, 6])
def test_a_resumed_hash_equals_the_one_shot_hash(stop_after):
    one_shot = hash_listing(EbsBlocks(StubEbs(PAGES)), SNAP)
    stub = StubEbs(PAGES)
    resume, calls = None, 0
    while True:  # each round is a new "invocation" that may read `stop_after` pages
        budget = iter([False] * (stop_after - 1) + [True] * 100)
        result = hash_listing(EbsBlocks(stub), SNAP, resume=resume, stop=lambda: next(budget))
        calls += 1
        if result["done"]:
            break
        resume = result["resume"]
        assert set(resume) == {"token", "hash"} and len(str(resume)) < 600  # small JSON state
    assert result == one_shot
    assert len(stub.calls) == len(PAGES)  # no page read twice
    assert calls == -(-len(PAGES) // stop_after)


def test_resuming_on_the_other_engine_gives_the_same_digest():
    one_shot = hash_listing(EbsBlocks(StubEbs(PAGES)), SNAP)
    stop = iter([False, True])
    half = hash_listing(EbsBlocks(StubEbs(PAGES)), SNAP, stop=lambda: next(stop), backend=blocklist.engine())
    rest = hash_listing(EbsBlocks(StubEbs(PAGES)), SNAP, resume=half["resume"], backend=PySha256)
    assert rest["digest"] == one_shot["digest"]


def test_an_expired_page_token_continues_from_the_last_block_index():
    one_shot = hash_listing(EbsBlocks(StubEbs(PAGES)), SNAP)
    stop = iter([False, True])
    half = hash_listing(EbsBlocks(StubEbs(PAGES)), SNAP, stop=lambda: next(stop))
    assert half["resume"]["hash"]["last"] == 17
    stub = StubEbs(PAGES, expire_tokens=True)
    rest = hash_listing(EbsBlocks(stub), SNAP, resume=half["resume"])
    assert rest["digest"] == one_shot["digest"]
    assert stub.calls[0]["NextToken"] == "T2" and stub.calls[1]["StartingBlockIndex"] == 18


def test_other_errors_propagate():
    class Failing(StubEbs):
        def list_snapshot_blocks(self, **params):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListSnapshotBlocks")

    with pytest.raises(ClientError, match="AccessDeniedException"):
        hash_listing(EbsBlocks(Failing([[]])), SNAP)


def test_stop_is_not_asked_before_the_first_page():
    stub = StubEbs(PAGES)
    result = hash_listing(EbsBlocks(stub), SNAP, stop=lambda: True)
    assert not result["done"] and len(stub.calls) == 1


def test_memory_does_not_grow_with_the_listing():
    import tracemalloc

    def pages(n_pages):
        class Lazy(StubEbs):
            def list_snapshot_blocks(self, **params):
                number = int(params.get("NextToken", "T0")[1:])
                page = self._page(number, list(range(number * 10000, (number + 1) * 10000)))
                if number + 1 < n_pages:
                    page["NextToken"] = f"T{number + 1}"
                else:
                    page.pop("NextToken", None)
                return page
        return EbsBlocks(Lazy([[]] * n_pages, volume_size=16384))

    def peak(n_pages):
        tracemalloc.start()
        hash_listing(pages(n_pages), SNAP)
        found = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return found

    # tracemalloc counts every thread of the process: a thread another test left running (the local runtime's)
    # can only add to a peak, never hide one, so the least of three measurements is the listing's own
    peaks = [min(peak(n) for _ in range(3)) for n in (2, 12)]
    assert peaks[1] < peaks[0] * 1.5  # 6x the blocks, about the same peak (one page at a time)
