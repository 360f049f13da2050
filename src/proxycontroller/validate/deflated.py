"""Gloo's compressed spec (base64 of a zlib stream), made of pieces compressed apart and kept from pass to pass.

Compressing a 10 MB spec costs ~25 ms whatever changed in it. A zlib stream may be cut into runs of deflate
blocks, each from its own compressor and flushed to a byte boundary (what a sync flush does): concatenated,
they are one valid stream, whose checksum is combined from the pieces' own. So each listener's admitted virtual
hosts are cut into chunks of a few hundred, each compressed once, and a pass recompresses only the chunks a
change touched. The stream differs from `zlib.compress` of the same bytes (and decompresses to them): a spec
is compared by its bytes when the texts differ.
"""

from __future__ import annotations

import base64
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from typing import NamedTuple

from proxycontroller.validate.ordered import Place

_HEADER = b"\x78\x9c"  # zlib: deflate with a 32 KiB window, default level
_LAST_BLOCK = b"\x03\x00"  # an empty final block (fixed Huffman codes): the end of the deflate stream
_ADLER_BASE = 65521

CHUNK = 256  # virtual hosts per chunk: ~50 KB of JSON, ~0.2 ms to compress


class Deflated(NamedTuple):
    """Some text as deflate blocks that end on a byte boundary and are not final, with its Adler-32 and size."""

    blocks: bytes
    adler: int
    size: int


def deflate(text: bytes) -> Deflated:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)  # raw deflate, no header
    return Deflated(compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH), zlib.adler32(text), len(text))


def compressed_text(pieces: Iterable[Deflated]) -> str:
    """Gloo's `compressedSpec` of the pieces' texts, in order: base64 of one zlib stream."""
    adler = 1  # the Adler-32 of nothing
    blocks = []
    for piece in pieces:
        adler = _adler32_combine(adler, piece.adler, piece.size)
        blocks.append(piece.blocks)
    stream = b"".join([_HEADER, *blocks, _LAST_BLOCK, adler.to_bytes(4, "big")])
    return base64.b64encode(stream).decode("ascii")


def _adler32_combine(first: int, second: int, second_size: int) -> int:
    """The Adler-32 of two texts one after the other, from theirs (zlib's adler32_combine)."""
    remainder = second_size % _ADLER_BASE
    low = first & 0xFFFF
    high = (remainder * low) % _ADLER_BASE
    low = (low + (second & 0xFFFF) + _ADLER_BASE - 1) % _ADLER_BASE
    high = (high + (first >> 16) + (second >> 16) + _ADLER_BASE - remainder) % _ADLER_BASE
    return low | (high << 16)


class Chunks:
    """A listener's admitted virtual hosts (their JSON, in order, joined by commas) cut into chunks by place:
    a chunk holds the places from its start to the next chunk's start, so a change touches one chunk. Each
    chunk's text (with the comma before it, unless it holds the listener's first virtual host) is deflated
    once, until a host in it changes."""

    def __init__(self) -> None:
        self._starts: list[Place] = [()]  # () sorts before every place: the first chunk takes what comes first
        # By start: (a comma before it?, how many virtual hosts it holds, its text deflated).
        self._made: dict[Place, tuple[bool, int, Deflated]] = {}

    def reset(self, places: list[Place]) -> None:
        """Cut anew, for the places (sorted) of all the admitted virtual hosts."""
        self._starts = [(), *places[CHUNK::CHUNK]]
        self._made = {}

    def touch(self, place: Place) -> None:
        """What the listener holds at `place` changed (came, went, or is another virtual host)."""
        self._made.pop(self._starts[bisect_right(self._starts, place) - 1], None)

    def deflated(self, places: list[Place], data: list[bytes]) -> list[Deflated]:
        """The chunks' texts deflated, in order, for the admitted virtual hosts at `places` (sorted) with JSON
        `data`; only chunks touched since the last call are looked at (and compressed) again."""
        starts, made = self._starts, self._made
        pieces = []
        after_another = False  # a chunk before this one holds a virtual host: this one's text starts with a comma
        index = 0
        while index < len(starts):
            start = starts[index]
            known = made.get(start)
            if known is None or known[0] != after_another:
                low = bisect_left(places, start) if index else 0
                high = bisect_left(places, starts[index + 1], low) if index + 1 < len(starts) else len(places)
                if high - low > 2 * CHUNK:  # grown: cut in two, and look at this chunk again
                    starts.insert(index + 1, places[low + CHUNK])
                    made.pop(start, None)
                    continue
                if high == low and index:  # emptied: the chunk before takes its range over
                    del starts[index]
                    made.pop(start, None)
                    continue
                text = b",".join(data[low:high])
                known = made[start] = (after_another, high - low, deflate(b"," + text if after_another else text))
            if known[1]:
                pieces.append(known[2])
                after_another = True
            index += 1
        return pieces
