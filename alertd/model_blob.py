"""A fitted model pickled in pieces: pickle protocol 5 with out-of-band buffers.

A model of 100,000 series is mostly numpy arrays (the `surprise` state: about 200 MB).
`pickle.dumps` copies them into one bytes object, and SQLite copies that again when it is
bound to a statement. `dump_pieces` instead hands the arrays' own memory over as
out-of-band buffers (no copy); the store writes the pieces one after the other into the
model's row, in one transaction (`ModelStore.save`), and `split` finds them again in the
bytes read back, so the arrays of the loaded model are views of those bytes (no copy either).

The stored blob is one byte string:

    MAGIC | u32 k | u64 pickle length | k x u64 buffer lengths | pickle | buffer 1 | ... | buffer k

with zero padding before each buffer so that it starts at a multiple of ALIGN bytes from the
start (arrays read back are aligned). A plain pickle (what `Detector.dump_model` returns, and
every model stored before this format) never starts with MAGIC: a pickle's first byte is an
opcode, and NUL is none.
"""

from __future__ import annotations

import pickle
import struct
from typing import Iterator

MAGIC = b"\x00alertd-pickle5\n"
ALIGN = 64
IN_BAND = 64 * 1024  # smaller buffers stay inside the pickle (not worth a piece)
CHUNK = 8 * 1024 * 1024  # the most bytes handed to one write


class Pieces:
    """A blob as a list of buffers (bytes, memoryviews of the model's arrays): `len()` is its
    size in bytes; iterating yields it in order, in slices of at most `CHUNK` bytes. The
    buffers are the model's own memory: the model must not change until they are written."""

    def __init__(self, parts: list):
        self.parts = [memoryview(p).cast("B") for p in parts]
        self.size = sum(p.nbytes for p in self.parts)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[memoryview]:
        for part in self.parts:
            for start in range(0, part.nbytes, CHUNK):
                yield part[start:start + CHUNK]

    def tobytes(self) -> bytes:
        """The whole blob in one bytes object (tests, small models)."""
        return b"".join(self.parts)


def _pad(offset: int) -> int:
    return -offset % ALIGN


def dump_pieces(obj) -> Pieces:
    """Pickle `obj` (protocol 5) with its big contiguous buffers (numpy arrays) out of band."""
    buffers: list[memoryview] = []

    def keep(buf: pickle.PickleBuffer):
        raw = buf.raw()
        if raw.nbytes < IN_BAND:
            return True  # in band
        buffers.append(raw)
        return False

    data = pickle.dumps(obj, protocol=5, buffer_callback=keep)
    head = MAGIC + struct.pack(f"<IQ{len(buffers)}Q", len(buffers), len(data), *(b.nbytes for b in buffers))
    parts: list = [head, data]
    offset = len(head) + len(data)
    for buf in buffers:
        pad = _pad(offset)
        if pad:
            parts.append(bytes(pad))
        parts.append(buf)
        offset += pad + buf.nbytes
    return Pieces(parts)


def is_pieces(blob) -> bool:
    """Whether `blob` (bytes-like) is in this format rather than a plain pickle."""
    return bytes(memoryview(blob)[:len(MAGIC)]) == MAGIC


def split(blob) -> tuple[memoryview, list[memoryview]]:
    """The pickle and the out-of-band buffers of a blob in this format, as views of `blob`
    (a bytearray gives writable arrays). Raises ValueError for a truncated or damaged blob."""
    view = memoryview(blob).cast("B")
    at = len(MAGIC)
    try:
        (k,) = struct.unpack_from("<I", view, at)
        lengths = struct.unpack_from(f"<{k + 1}Q", view, at + 4)
    except struct.error:
        raise ValueError("the stored model is truncated (its header is incomplete)") from None
    offset = at + 4 + 8 * (k + 1)
    data = view[offset:offset + lengths[0]]
    offset += lengths[0]
    buffers = []
    for n in lengths[1:]:
        offset += _pad(offset)
        buffers.append(view[offset:offset + n])
        offset += n
    if offset != view.nbytes:
        raise ValueError(f"the stored model is {view.nbytes} bytes where its header says {offset}")
    return data, buffers
