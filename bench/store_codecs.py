"""Benchmark (issue 20): candidate codecs for sealed sample chunks, on realistic values.

    nice -n 10 .venv/bin/python bench/store_codecs.py     # --series 480 --chunks 120 180 360 720

Values: bench/realistic_values.py (nab-dev's and the shop simulator's exact values, cycled
over the series), and full-precision random floats. Timestamps: 10 s polls with up to 50 ms
of jitter. Each series is cut into chunks of `--chunks` points; each candidate codes a chunk's
timestamps and values, and decodes them back (checked bit for bit). Reported per candidate:
bytes a sample (codec output only: no SQLite row, no shared timestamps), and microseconds to
encode and to decode a chunk (medians of 3 passes). Bytes are given twice: with each chunk's
own jittered timestamps, and with timestamps exactly 10 s apart, which is about what the
values alone cost (the store keeps one timestamp array per window for all the series of a
poll, so the values are what each series pays).

Candidates:
- `np+zlib`: numpy transforms, then zlib (the standard library): timestamps as
  delta-of-delta of their int64 bit patterns, values as scaled integers when every value is
  an exact decimal of up to 12 places (zigzag deltas), else XOR with the previous value's
  bits (Gorilla's idea, without its bit packing); byte planes shuffled, then compressed.
- `np+zstd`: the same, compressed with zstd level 3 (only if `zstandard` is installed).
- `pcodec`: pcodec on the int64 bit patterns of the timestamps and on the values (as exact
  decimals' integers when they are, as the store does: alertd/store/chunk_codec.py).
- A bit-packed Gorilla coder in pure Python was not a candidate: decoding point by point in
  the interpreter costs microseconds a point, and a training read is 30 million points.
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib

import numpy as np
import realistic_values
import scale_common as common

from alertd.store.chunk_codec import decode_times, decode_values, encode_times, encode_values

try:
    import zstandard
except ImportError:  # not a dependency of alertd: measured when present
    zstandard = None


def _shuffle(a: np.ndarray) -> bytes:
    return a.astype("<i8").view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(raw: bytes, n: int) -> np.ndarray:
    return np.frombuffer(raw, np.uint8).reshape(8, n).T.copy().view("<i8").ravel()


def _decimals(v: np.ndarray):
    for d in range(13):
        s = 10.0 ** d
        q = np.round(v * s)
        if np.abs(q).max(initial=0) < 2 ** 52 and np.array_equal((q / s).view(np.int64), v.view(np.int64)):
            return d, q.astype(np.int64)
    return None, None


def np_codec(compress, decompress):
    def encode(t, v):
        bits = t.view(np.int64)
        dod = np.diff(bits, 2, prepend=[0, 0])
        d, q = _decimals(v)
        if d is not None:
            dv = np.diff(q, prepend=0)
            body = (dv << 1) ^ (dv >> 63)
        else:
            b = v.view(np.int64)
            body, d = b ^ np.concatenate([[0], b[:-1]]), 255
        return bytes([d]) + compress(_shuffle(dod) + _shuffle(body))

    def decode(blob, n):
        raw = decompress(blob[1:])
        t = np.cumsum(np.cumsum(_unshuffle(raw[:8 * n], n))).view(np.float64)
        body = _unshuffle(raw[8 * n:], n)
        if blob[0] == 255:
            v = np.bitwise_xor.accumulate(body).view(np.float64)
        else:
            v = np.cumsum((body >> 1) ^ -(body & 1)) / 10.0 ** blob[0]
        return t, v
    return encode, decode


def pcodec_codec():
    def encode(t, v):
        a, b = encode_times(t), encode_values(v)
        return len(a).to_bytes(4, "little") + a + b

    def decode(blob, n):
        k = int.from_bytes(blob[:4], "little")
        return decode_times(blob[4:4 + k]), decode_values(blob[4 + k:])
    return encode, decode


def candidates() -> dict:
    out = {"np+zlib": np_codec(lambda b: zlib.compress(b, 6), zlib.decompress)}
    if zstandard is not None:
        out["np+zstd"] = np_codec(zstandard.ZstdCompressor(3).compress, zstandard.ZstdDecompressor().decompress)
    out["pcodec"] = pcodec_codec()
    return out


def measure(values: np.ndarray, size: int, encode, decode, jitter_s: float = 0.05) -> dict:
    points = values.shape[1] - values.shape[1] % size
    jitter = np.random.default_rng(2).uniform(0, jitter_s, points)
    ts = 1_750_000_000.0 + 10.0 * np.arange(points) + jitter
    chunks = [(ts[j:j + size], values[i, j:j + size]) for i in range(values.shape[0]) for j in range(0, points, size)]
    enc, dec = [], []
    for _ in range(3):
        started = time.perf_counter()
        blobs = [encode(t, v) for t, v in chunks]
        enc.append((time.perf_counter() - started) / len(chunks))
        started = time.perf_counter()
        back = [decode(b, size) for b in blobs]
        dec.append((time.perf_counter() - started) / len(chunks))
    for (t, v), (t2, v2) in zip(chunks, back):
        assert np.array_equal(t.view(np.int64), t2.view(np.int64)) and np.array_equal(v.view(np.int64), v2.view(np.int64))
    return {"bytes": sum(map(len, blobs)) / (len(chunks) * size), "enc_us": statistics.median(enc) * 1e6,
            "dec_us": statistics.median(dec) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=480, help="10 of each of the 48 source series")
    parser.add_argument("--chunks", type=int, nargs="+", default=[120, 180, 360, 720])
    parser.add_argument("--nab", default=None)
    args = parser.parse_args()
    print(common.machine())
    longest = max(args.chunks) * 4
    data = {"realistic": realistic_values.series_values(args.series, longest, args.nab),
            "random": realistic_values.random_values(args.series, longest)}
    print("| values | points a chunk | codec | bytes a sample, own jittered timestamps | bytes a sample, "
          "timestamps exactly 10 s apart | encode us a chunk | decode us a chunk |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for label, values in data.items():
        for size in args.chunks:
            for name, (encode, decode) in candidates().items():
                m = measure(values, size, encode, decode)
                exact = measure(values, size, encode, decode, 0.0)
                print(f"| {label} | {size} | {name} | {m['bytes']:.2f} | {exact['bytes']:.2f} | {m['enc_us']:.0f} "
                      f"| {m['dec_us']:.0f} |")
    print("end of run: " + common.machine())


if __name__ == "__main__":
    main()
