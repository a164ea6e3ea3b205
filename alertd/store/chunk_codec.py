"""The byte format of sealed sample chunks: pcodec over float64 values and int64 timestamps.

Chosen by measurement (issue 20, docs/benchmarks.md "Issue 20"): on nab-dev's and the shop
simulator's values, pcodec keeps 2.6-3.1 bytes a sample in chunks of 120-720 points and
decodes a chunk in about 8 us, against 2.9-3.4 bytes and 70-150 us for numpy transforms
(delta-of-delta timestamps, scaled integers or XOR values, byte planes) compressed with zlib or
zstd. pcodec is lossless: every float64 comes back bit for bit (-0.0, 2**63, NaN for a NULL).

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


def encode_values(values: np.ndarray) -> bytes:
    return standalone.simple_compress(np.ascontiguousarray(values, dtype=np.float64), _CONFIG)


def decode_values(blob: bytes) -> np.ndarray:
    out = standalone.simple_decompress(blob)
    return np.zeros(0) if out is None else out


def encode_times(ts: np.ndarray) -> bytes:
    return standalone.simple_compress(np.ascontiguousarray(ts, dtype=np.float64).view(np.int64), _CONFIG)


def decode_times(blob: bytes) -> np.ndarray:
    out = standalone.simple_decompress(blob)
    return np.zeros(0) if out is None else out.view(np.float64)
