"""The byte format of sealed sample chunks: pcodec over float64 values and int64 timestamps.

Chosen by measurement (issue 20, docs/benchmarks.md "Issue 20"): on nab-dev's and the shop
simulator's values, pcodec keeps 2.6-3.1 bytes a sample in chunks of 120-720 points and
decodes a chunk in about 8 us, against 2.9-3.4 bytes and 70-150 us for numpy transforms
(delta-of-delta timestamps, scaled integers or XOR values, byte planes) compressed with zlib or
zstd. pcodec is lossless: every float64 comes back bit for bit (-0.0, 2**63, NaN for a NULL).
Values that are exactly decimals of up to 12 places (integers above all) are coded as those
integers, after a check that they come back bit for bit: 0.1-0.3 bytes a sample less on
such series.

Timestamps are coded as the int64 bit patterns of their float64s: within one binade (every
epoch second from 2004 to 2038 is one) those patterns grow linearly with time, so regular polls
give a constant delta that pcodec's delta coding turns into almost nothing, and any float
comes back exactly.
"""

from __future__ import annotations

import numpy as np
import pcodec
from pcodec import standalone

_CONFIG = pcodec.ChunkConfig()


_FLOATS = 255  # first byte of a chunk of values coded as float64s; 0-12: decimal places


def _decimals(values: np.ndarray) -> tuple[int, np.ndarray] | None:
    """(d, ints) when every value is exactly ints / 10**d for some d <= 12 (counts, gauges
    written with a few decimals: pcodec codes their integers tighter than their floats)."""
    if not np.isfinite(values).all():
        return None
    bits = values.view(np.int64)
    for d in range(13):
        scale = 10.0 ** d
        ints = np.round(values * scale)
        if np.abs(ints).max(initial=0.0) >= 2.0 ** 53:
            return None
        if np.array_equal((ints / scale).view(np.int64), bits):
            return d, ints.astype(np.int64)
    return None


def encode_values(values: np.ndarray) -> bytes:
    values = np.ascontiguousarray(values, dtype=np.float64)
    scaled = _decimals(values)
    if scaled is not None:
        return bytes([scaled[0]]) + standalone.simple_compress(scaled[1], _CONFIG)
    return bytes([_FLOATS]) + standalone.simple_compress(values, _CONFIG)


def decode_values(blob: bytes) -> np.ndarray:
    out = standalone.simple_decompress(blob[1:])
    if out is None:
        return np.zeros(0)
    if blob[0] == _FLOATS:
        return out
    return out / 10.0 ** blob[0]


def encode_times(ts: np.ndarray) -> bytes:
    return standalone.simple_compress(np.ascontiguousarray(ts, dtype=np.float64).view(np.int64), _CONFIG)


def decode_times(blob: bytes) -> np.ndarray:
    out = standalone.simple_decompress(blob)
    return np.zeros(0) if out is None else out.view(np.float64)
