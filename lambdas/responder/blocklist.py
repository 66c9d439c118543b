"""The block-list digest of an EBS snapshot: canonical serialisation, streaming and resumable SHA-256.

Canonical serialisation (version 1)
-----------------------------------
The complete `ListSnapshotBlocks` listing of one snapshot (every page) is written as ASCII lines, each ended by
one LF (``\\n``), decimal, without sign, padding or leading zeros:

    <VolumeSize>        the volume size in GiB, as ListSnapshotBlocks reports it
    <BlockSize>         the block size in bytes, as reported (524288 on EBS)
    <BlockIndex>        one line per block, in ascending order, each index once

Block tokens and ``ExpiryTime`` are left out: they change on every call. A snapshot without written blocks is the
two header lines alone. The digest is SHA-256 over those bytes, written ``sha256:<64 lowercase hex digits>``
(the value of the ``ir:hash`` tag). Example: VolumeSize 8, BlockSize 524288, blocks 0, 1, 4096 give
``b"8\\n524288\\n0\\n1\\n4096\\n"``.

Anyone can re-check an ``ir:hash`` tag with the AWS CLI, jq and sha256sum (ListSnapshotBlocks has no CLI
auto-pagination, hence the loop)::

    S=snap-0123456789abcdef0; T=; H=
    { while :; do
        P=$(aws ebs list-snapshot-blocks --snapshot-id "$S" --max-results 10000 ${T:+--next-token "$T"} --output json)
        [ -n "$H" ] || { jq -r '.VolumeSize, .BlockSize' <<<"$P"; H=1; }
        jq -r '.Blocks[].BlockIndex' <<<"$P"
        T=$(jq -r '.NextToken // empty' <<<"$P"); [ -n "$T" ] || break
      done; } | sha256sum

or with ``python -m responder.aws.ebs snap-0123456789abcdef0`` (from the ``lambdas`` folder).

Streaming and resuming
----------------------
A 16 TiB volume has 33,554,432 blocks (~300 MB of canonical text): the listing is hashed page by page, so memory
holds one page at a time. It may also outlast one Lambda invocation (15 minutes at most), so the hash can stop
between pages and continue in a new invocation from a small JSON state: the page token, the last block index and
the SHA-256 *midstate*. Python's ``hashlib`` cannot export its midstate, so the hash runs on one of two
interchangeable engines sharing one portable state format (``v1:<8 state words>:<bytes hashed>:<pending bytes>``):

* OpenSSL's ``SHA256_Init/Update/Final`` through ctypes on the ``libcrypto`` that Python's own ``hashlib`` has
  already loaded (as fast as ``hashlib``); used only after a self-test against ``hashlib`` (digest and export /
  import round trip) passes;
* a pure-Python SHA-256 (FIPS 180-4), verified against ``hashlib`` by the tests; slower, used when no usable
  libcrypto is found.

A state exported by one engine resumes on the other. If a saved page token is refused on resume (expired), the
listing continues from ``StartingBlockIndex`` = last index + 1, which gives the same sequence.
"""
from __future__ import annotations

import ctypes
import hashlib
import struct
import sys
from operator import itemgetter
from typing import Any, Callable, Protocol

CANONICAL_VERSION = 1
PAGE_SIZE = 10_000  # ListSnapshotBlocks MaxResults allows 100..10000: fewest requests
DIGEST_PREFIX = "sha256:"
_M32 = 0xFFFFFFFF
_INITIAL = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)


class BlockListError(Exception):
    """The listing is not canonical: indices not strictly ascending, sizes changing between pages, bad types.
    The class name is the error name recorded for the evidence item."""


# --------------------------------------------------------------------------------------------------------
# The portable SHA-256 state and its two engines
# --------------------------------------------------------------------------------------------------------
def _encode(h: tuple[int, ...] | list[int], length: int, pending: bytes) -> str:
    return f"v1:{struct.pack('>8I', *h).hex()}:{length}:{pending.hex()}"


def _decode(state: str) -> tuple[tuple[int, ...], int, bytes]:
    try:
        version, words, length, pending = state.split(":")
        h = struct.unpack(">8I", bytes.fromhex(words))
        count, buf = int(length), bytes.fromhex(pending)
    except (ValueError, struct.error) as exc:
        raise ValueError(f"not a SHA-256 state: {state[:40]!r}") from exc
    if version != "v1" or count < 0 or len(buf) != count % 64:
        raise ValueError(f"inconsistent SHA-256 state: {state[:40]!r}")
    return h, count, buf


def _compress(h: list[int], chunk: bytes, offset: int = 0) -> None:
    """One SHA-256 compression of the 64 bytes at chunk[offset:] into h (in place)."""
    w = list(struct.unpack_from(">16I", chunk, offset))
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = ((x >> 7 | x << 25) ^ (x >> 18 | x << 14) ^ (x >> 3)) & _M32
        s1 = ((y >> 17 | y << 15) ^ (y >> 19 | y << 13) ^ (y >> 10)) & _M32
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M32)
    a, b, c, d, e, f, g, hh = h
    for t in range(64):
        t1 = (hh + (((e >> 6 | e << 26) ^ (e >> 11 | e << 21) ^ (e >> 25 | e << 7)) & _M32)
              + ((e & f) ^ (~e & g)) + _K[t] + w[t])
        t2 = (((a >> 2 | a << 30) ^ (a >> 13 | a << 19) ^ (a >> 22 | a << 10)) & _M32) + ((a & b) ^ (a & c) ^ (b & c))
        hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M32, c, b, a, (t1 + t2) & _M32
    h[0] = (h[0] + a) & _M32
    h[1] = (h[1] + b) & _M32
    h[2] = (h[2] + c) & _M32
    h[3] = (h[3] + d) & _M32
    h[4] = (h[4] + e) & _M32
    h[5] = (h[5] + f) & _M32
    h[6] = (h[6] + g) & _M32
    h[7] = (h[7] + hh) & _M32


class PySha256:
    """SHA-256 in pure Python with an exportable state (the fallback engine)."""

    name = "python"

    def __init__(self, state: str | None = None):
        if state:
            h, self._length, self._pending = _decode(state)
            self._h = list(h)
        else:
            self._h, self._length, self._pending = list(_INITIAL), 0, b""

    def update(self, data: bytes) -> None:
        if not data:
            return
        self._length += len(data)
        buf = self._pending + bytes(data) if self._pending else bytes(data)
        end = len(buf) - len(buf) % 64
        h = self._h
        for offset in range(0, end, 64):
            _compress(h, buf, offset)
        self._pending = buf[end:]

    def export(self) -> str:
        return _encode(self._h, self._length, self._pending)

    def hexdigest(self) -> str:
        h = list(self._h)
        tail = self._pending + b"\x80" + b"\x00" * ((55 - self._length) % 64) + struct.pack(">Q", self._length * 8)
        for offset in range(0, len(tail), 64):
            _compress(h, tail, offset)
        return struct.pack(">8I", *h).hex()


class _Ctx(ctypes.Structure):
    """OpenSSL's SHA256_CTX (unchanged from 0.9.8 to 3.x): h[8], Nl, Nh, data[16], num, md_len."""

    _fields_ = [("h", ctypes.c_uint32 * 8), ("Nl", ctypes.c_uint32), ("Nh", ctypes.c_uint32),
                ("data", ctypes.c_uint32 * 16), ("num", ctypes.c_uint), ("md_len", ctypes.c_uint)]


class _LibCrypto:
    def __init__(self, lib: Any):
        self.init, self.update, self.final = lib.SHA256_Init, lib.SHA256_Update, lib.SHA256_Final
        self.init.argtypes = [ctypes.POINTER(_Ctx)]
        self.update.argtypes = [ctypes.POINTER(_Ctx), ctypes.c_char_p, ctypes.c_size_t]
        self.final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Ctx)]
        for fn in (self.init, self.update, self.final):
            fn.restype = ctypes.c_int


class OpenSslSha256:
    """SHA-256 on libcrypto's SHA256_CTX through ctypes: hashlib's speed, with an exportable state."""

    name = "openssl"
    lib: _LibCrypto | None = None

    def __init__(self, state: str | None = None):
        self._ctx = _Ctx()
        if state:
            h, length, pending = _decode(state)
            self._ctx.h[:] = h
            bits = length * 8
            self._ctx.Nl, self._ctx.Nh = bits & _M32, (bits >> 32) & _M32
            ctypes.memmove(ctypes.addressof(self._ctx.data), pending, len(pending))
            self._ctx.num, self._ctx.md_len = len(pending), 32
        elif not self.lib.init(ctypes.byref(self._ctx)):
            raise RuntimeError("SHA256_Init failed")

    def update(self, data: bytes) -> None:
        if data and not self.lib.update(ctypes.byref(self._ctx), bytes(data), len(data)):
            raise RuntimeError("SHA256_Update failed")

    def export(self) -> str:
        ctx = self._ctx
        length = ((ctx.Nh << 32) | ctx.Nl) // 8
        return _encode(tuple(ctx.h), length, bytes(ctx.data)[: ctx.num])

    def hexdigest(self) -> str:
        ctx = _Ctx()  # SHA256_Final wipes its context: finish on a copy
        ctypes.memmove(ctypes.byref(ctx), ctypes.byref(self._ctx), ctypes.sizeof(_Ctx))
        out = ctypes.create_string_buffer(32)
        if not self.lib.final(out, ctypes.byref(ctx)):
            raise RuntimeError("SHA256_Final failed")
        return out.raw.hex()


def _libcrypto_candidates() -> list[str]:
    names: list[str] = []
    if sys.platform.startswith("linux"):
        import _hashlib  # noqa: F401 - makes sure hashlib's libcrypto is mapped, so we reuse that very file

        try:
            with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
                for line in maps:
                    path = line.split()[-1] if line.strip() else ""
                    if "libcrypto" in path and path.startswith("/") and path not in names:
                        names.append(path)
        except OSError:
            pass
        names += ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"]
    elif sys.platform == "darwin":  # never the unversioned system stub (it aborts the process)
        names += ["/opt/homebrew/opt/openssl@3/lib/libcrypto.3.dylib", "/usr/local/opt/openssl@3/lib/libcrypto.3.dylib"]
    return names


def _self_test(engine: type) -> bool:
    data = bytes(range(256)) * 5 + b"tail"
    whole = engine()
    whole.update(data)
    part = engine()
    part.update(data[:77])
    resumed = engine(part.export())
    resumed.update(data[77:])
    expected = hashlib.sha256(data).hexdigest()
    crossed = PySha256(part.export())
    crossed.update(data[77:])
    return whole.hexdigest() == resumed.hexdigest() == crossed.hexdigest() == expected


_ENGINE: list[type] = []


def engine() -> type:
    """The SHA-256 engine: OpenSSL through ctypes if it loads and passes the self-test, else pure Python."""
    if _ENGINE:
        return _ENGINE[0]
    chosen: type = PySha256
    for name in _libcrypto_candidates():
        try:
            OpenSslSha256.lib = _LibCrypto(ctypes.CDLL(name))
            if _self_test(OpenSslSha256):
                chosen = OpenSslSha256
                break
        except (OSError, AttributeError, RuntimeError, ValueError):
            continue
    _ENGINE.append(chosen)
    return chosen


def sha256(state: str | None = None, *, backend: type | None = None):
    """A SHA-256 object (update / export / hexdigest), fresh or resumed from an exported state."""
    return (backend or engine())(state)


# --------------------------------------------------------------------------------------------------------
# The canonical serialisation, streamed
# --------------------------------------------------------------------------------------------------------
_index = itemgetter("BlockIndex")


def header(volume_size: int, block_size: int) -> bytes:
    return b"%d\n%d\n" % (volume_size, block_size)


def page_bytes(indices: list[int]) -> bytes:
    """The canonical lines of one page's block indices (already validated)."""
    return "\n".join(map(str, indices)).encode("ascii") + b"\n" if indices else b""


def canonical(volume_size: int, block_size: int, indices: list[int]) -> bytes:
    """The whole canonical serialisation in memory (tests and small listings only)."""
    return header(volume_size, block_size) + page_bytes(list(indices))


def digest_of(volume_size: int, block_size: int, indices: list[int]) -> str:
    return DIGEST_PREFIX + hashlib.sha256(canonical(volume_size, block_size, indices)).hexdigest()


class BlockListHash:
    """The running digest of one listing, fed page by page; `state()` / `BlockListHash(state)` resume it."""

    def __init__(self, state: dict | None = None, *, backend: type | None = None):
        state = state or {}
        self._sha = sha256(state.get("sha"), backend=backend)
        self.volume_size: int | None = state.get("volumeSize")
        self.block_size: int | None = state.get("blockSize")
        self.last: int = int(state.get("last", -1))
        self.blocks: int = int(state.get("blocks", 0))
        self.pages: int = int(state.get("pages", 0))

    def feed(self, page: dict) -> None:
        volume_size, block_size = page.get("VolumeSize"), page.get("BlockSize")
        for name, value in (("VolumeSize", volume_size), ("BlockSize", block_size)):
            if type(value) is not int or value < 1:
                raise BlockListError(f"{name} must be a positive integer, got {value!r}")
        if self.volume_size is None:
            self.volume_size, self.block_size = volume_size, block_size
            self._sha.update(header(volume_size, block_size))
        elif (volume_size, block_size) != (self.volume_size, self.block_size):
            raise BlockListError(f"VolumeSize/BlockSize changed between pages: {(self.volume_size, self.block_size)}"
                                 f" then {(volume_size, block_size)}")
        indices = list(map(_index, page.get("Blocks") or ()))
        if indices:
            try:
                total = sum(indices)  # C-speed type check: a str raises, a float makes the sum a float
            except TypeError as exc:
                raise BlockListError(f"BlockIndex values must be integers: {exc}") from exc
            if type(total) is not int:
                raise BlockListError("BlockIndex values must be integers")
            if indices[0] <= self.last or indices[0] < 0:
                raise BlockListError(f"BlockIndex {indices[0]} does not follow {self.last}")
            if indices != sorted(indices) or len(set(indices)) != len(indices):
                raise BlockListError("BlockIndex values within a page are not strictly ascending")
            self._sha.update(page_bytes(indices))
            self.last = indices[-1]
            self.blocks += len(indices)
        self.pages += 1

    @property
    def started(self) -> bool:
        return self.volume_size is not None

    def state(self) -> dict:
        return {"sha": self._sha.export(), "volumeSize": self.volume_size, "blockSize": self.block_size,
                "last": self.last, "blocks": self.blocks, "pages": self.pages}

    def digest(self) -> str:
        if not self.started:
            raise BlockListError("no page was hashed")
        return DIGEST_PREFIX + self._sha.hexdigest()


class Lister(Protocol):
    def list_page(self, snapshot_id: str, *, next_token: str | None = None, starting_index: int | None = None,
                  max_results: int = PAGE_SIZE) -> dict: ...


def _expired_token(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ValidationException"


def hash_listing(lister: Lister, snapshot_id: str, *, resume: dict | None = None,
                 stop: Callable[[], bool] = lambda: False, page_size: int = PAGE_SIZE,
                 backend: type | None = None) -> dict:
    """Hash a snapshot's listing from the start or from `resume`, until the end or until `stop()` says so
    (checked before each page; at least one page is read per call).

    Returns ``{"done": True, "digest", "blocks", "pages", "volumeSize", "blockSize"}`` or
    ``{"done": False, "resume": {...}}`` (JSON, a few hundred bytes) to pass back in the next call.
    """
    resume = resume or {}
    running = BlockListHash(resume.get("hash"), backend=backend)
    token: str | None = resume.get("token")
    retried = False
    first = True
    while True:
        if not first and stop():
            return {"done": False, "resume": {"token": token, "hash": running.state()}}
        first = False
        starting = running.last + 1 if (token is None and running.started) else None
        try:
            page = lister.list_page(snapshot_id, next_token=token, starting_index=starting, max_results=page_size)
        except Exception as exc:
            if token is not None and not retried and _expired_token(exc):
                token, retried = None, True  # a saved token expired: continue from the last index instead
                continue
            raise
        running.feed(page)
        token = page.get("NextToken") or None
        if token is None:
            return {"done": True, "digest": running.digest(), "blocks": running.blocks, "pages": running.pages,
                    "volumeSize": running.volume_size, "blockSize": running.block_size}
