"""EBU R128 / ITU-R BS.1770-4 integrated loudness and sample peak, streamed, in numpy.

The K-weighting filter (a high shelf, then a high pass: two biquads) is run exactly but
without a Python loop per sample. The signal is cut into blocks of L samples and each biquad
is written in state-space form, so that a block's output is one matrix product with the
biquad's impulse response (BLAS), plus the response to the 2-value state the block starts
in. The states at the block starts follow a linear recurrence over blocks, solved by prefix
doubling (a handful of vector operations, since A**L decays fast). Biquads one after the
other, not one 4th-order filter: a 4th-order direct form is too ill-conditioned for float32
(and diverges at high sample rates), a biquad is not. The result equals the direct IIR to
float32 rounding (about 1e-6 of full scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
REPLAYGAIN_REFERENCE_LUFS = -18.0  # ReplayGain 2.0
R128_REFERENCE_LUFS = -23.0  # EBU R128, and RFC 7845's R128_*_GAIN tags

_BLOCK = 64  # samples per block of the block-state filter
_NEGLIGIBLE = 1e-12  # when A**(L*d) is this small, earlier states no longer matter

# BS.1770 channel weights by FFmpeg channel name: surrounds +1.5 dB, LFE left out.
_SURROUND = {"SL", "SR", "BL", "BR", "SDL", "SDR", "LS", "RS"}
_EXCLUDED = {"LFE", "LFE2", "LFE1"}

Coefficients = tuple[NDArray[np.float64], NDArray[np.float64]]


def k_weighting_stages(rate: int) -> tuple[Coefficients, Coefficients]:
    """The BS.1770 K-weighting biquads for a sample rate: ((b, a) shelf, (b, a) high pass).

    The analog prototypes are mapped by the bilinear transform so that at 48 kHz the stages
    equal the coefficients tabulated in BS.1770 (the same design as libebur128).
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0,
                        (vh - vb * k / q + k * k) / a0])
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1.0 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return (shelf_b, shelf_a), (hp_b, hp_a)


def k_weighting(rate: int) -> Coefficients:
    """The whole K-weighting filter as one 4th-order (b, a), for reference."""
    (sb, sa), (hb, ha) = k_weighting_stages(rate)
    return np.convolve(sb, hb), np.convolve(sa, ha)


@dataclass(frozen=True)
class _BlockFilter:
    """A biquad in block-state form: y_k = x_k T + s_k O, s_{k+1} = s_k P + x_k R."""

    toeplitz: NDArray[np.float32]  # L x L: x_k -> zero-state response
    observe: NDArray[np.float32]  # 2 x L: state -> zero-input response
    reach: NDArray[np.float32]  # L x 2: x_k -> its part of the next state
    powers: tuple[NDArray[np.float64], ...]  # (A^L)^(2^j) for j = 0, 1, ... until negligible


@cache
def _block_filters(rate: int, size: int = _BLOCK) -> tuple[_BlockFilter, ...]:
    return tuple(_block_filter(b, a, size) for b, a in k_weighting_stages(rate))


def _block_filter(b: NDArray[np.float64], a: NDArray[np.float64], size: int) -> _BlockFilter:
    order = len(a) - 1
    # Observable canonical form (transposed direct form II), row-vector convention:
    # s' = s A + x B, y = s C + x D.
    big_a = np.zeros((order, order))
    big_a[:, 0] = -a[1:]
    big_a[:-1, 1:] = np.eye(order - 1)
    big_a = big_a.T
    big_b = b[1:] - a[1:] * b[0]
    big_c = np.zeros(order)
    big_c[0] = 1.0
    # Impulse response h[0..L-1], and the state-to-output rows C (A^T)^i.
    h = np.zeros(size)
    h[0] = b[0]
    state = big_b.copy()
    observe = np.zeros((order, size))
    a_pow = np.eye(order)
    for i in range(size):
        observe[:, i] = a_pow @ big_c
        a_pow = a_pow @ big_a
        if i + 1 < size:
            h[i + 1] = state @ big_c
            state = state @ big_a
    toeplitz = np.zeros((size, size))
    for i in range(size):
        toeplitz[i, i:] = h[: size - i]
    # reach[i] = B A^(L-1-i): how input sample i of a block lands in the next block's state.
    reach = np.zeros((size, order))
    vec = big_b.copy()
    for i in range(size - 1, -1, -1):
        reach[i] = vec
        vec = vec @ big_a
    powers: list[NDArray[np.float64]] = []
    p = a_pow  # A^L
    while np.abs(p).max() > _NEGLIGIBLE and len(powers) < 64:
        powers.append(p)
        p = p @ p
    return _BlockFilter(toeplitz.astype(np.float32), observe.astype(np.float32),
                        reach.astype(np.float32), tuple(powers))


def _run_block_filter(flt: _BlockFilter, xb: NDArray[np.float32],
                      state: NDArray[np.float64]) -> NDArray[np.float32]:
    """Filter blocks xb (channels, blocks, L) from the given states (channels, order), which
    are updated in place to the states after the last block."""
    ch, nb, size = xb.shape
    y = (xb.reshape(ch * nb, size) @ flt.toeplitz).reshape(ch, nb, size)
    # Block-start states: z[0] = carried state, z[k] = x_{k-1} R, then prefix doubling.
    z = np.empty((ch, nb + 1, state.shape[1]))
    z[:, 0] = state
    z[:, 1:] = xb @ flt.reach
    d = 1
    for power in flt.powers:
        if d > nb:
            break
        z[:, d:] = z[:, d:] + z[:, :-d] @ power
        d *= 2
    state[:] = z[:, nb]
    y += z[:, :nb].astype(np.float32) @ flt.observe
    return y


def channel_weights(names: list[str]) -> NDArray[np.float64]:
    """BS.1770 weights for channels named as FFmpeg does (FL, FR, FC, LFE, SL, ...)."""
    out = []
    for name in names:
        key = name.upper()
        out.append(0.0 if key in _EXCLUDED else 1.41 if key in _SURROUND else 1.0)
    return np.array(out)


@dataclass(frozen=True)
class Loudness:
    """What was measured: integrated loudness (None when all blocks are gated out) and peak."""

    integrated_lufs: float | None
    sample_peak: float
    samples: int
    rate: int

    @property
    def duration_s(self) -> float:
        """Length of the measured signal in seconds."""
        return self.samples / self.rate

    def replaygain_db(self) -> float | None:
        """ReplayGain 2.0 track gain: the gain that brings the track to -18 LUFS."""
        if self.integrated_lufs is None:
            return None
        return REPLAYGAIN_REFERENCE_LUFS - self.integrated_lufs

    def r128_gain_q78(self) -> int | None:
        """RFC 7845 R128_TRACK_GAIN: gain to -23 LUFS in Q7.8 fixed point (an int16)."""
        if self.integrated_lufs is None:
            return None
        q = round((R128_REFERENCE_LUFS - self.integrated_lufs) * 256)
        return max(-32768, min(32767, q))


class LoudnessMeter:
    """Feed interleaved or planar float samples in any chunk sizes; read the result at the end."""

    def __init__(self, rate: int, channel_names: list[str]) -> None:
        if rate <= 0 or not channel_names:
            raise ValueError("a loudness meter needs a sample rate and at least one channel")
        self.rate = rate
        self.channels = len(channel_names)
        self.weights = channel_weights(channel_names)
        self._filters = _block_filters(rate)
        self._states = [np.zeros((self.channels, len(f.observe))) for f in self._filters]
        self._pending: list[NDArray[np.float32]] = []  # planar chunks not yet filtered
        self._pending_n = 0
        self._segment = (rate + 5) // 10  # samples in 100 ms, as libebur128 rounds it
        self._seg_fill = 0
        self._seg_acc = 0.0
        self._segments: list[NDArray[np.float64]] = []
        self._peak = 0.0
        self._samples = 0
        self._chunk = _BLOCK * 1024

    def add_planar(self, planar: NDArray[np.floating]) -> None:
        """Add samples shaped (channels, n)."""
        if planar.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {planar.shape[0]}")
        n = planar.shape[1]
        if n == 0:
            return
        self._samples += n
        self._pending.append(np.asarray(planar, dtype=np.float32))
        self._pending_n += n
        if self._pending_n >= self._chunk:
            self._flush(final=False)

    def add_interleaved(self, samples: NDArray[np.floating]) -> None:
        """Add samples interleaved channel by channel (as in packed 'flt' frames)."""
        self.add_planar(np.asarray(samples).reshape(-1, self.channels).T)

    def _flush(self, final: bool) -> None:
        if not self._pending:
            return
        data = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 else \
            self._pending[0]
        size = _BLOCK
        usable = data.shape[1] if final else data.shape[1] - data.shape[1] % size
        rest = data[:, usable:]
        self._pending = [rest] if rest.shape[1] else []
        self._pending_n = rest.shape[1]
        if usable == 0:
            return
        block = data[:, :usable]
        self._peak = max(self._peak, float(np.abs(block).max()))
        if usable % size:
            block = np.pad(block, ((0, 0), (0, size - usable % size)))
        y = self._run_filter(block)[:, :usable]
        np.square(y, out=y)
        self._accumulate(self.weights.astype(np.float32) @ y)

    def _run_filter(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """K-weight planar samples (channels, n), n a multiple of the block size."""
        ch, n = x.shape
        y = np.ascontiguousarray(x, dtype=np.float32).reshape(ch, n // _BLOCK, _BLOCK)
        for flt, state in zip(self._filters, self._states, strict=True):
            y = _run_block_filter(flt, y, state)
        return y.reshape(ch, n)

    def _accumulate(self, power: NDArray[np.float32]) -> None:
        seg = self._segment
        pos = 0
        n = len(power)
        if self._seg_fill:
            take = min(seg - self._seg_fill, n)
            self._seg_acc += float(power[:take].sum(dtype=np.float64))
            self._seg_fill += take
            pos = take
            if self._seg_fill == seg:
                self._segments.append(np.array([self._seg_acc]))
                self._seg_fill, self._seg_acc = 0, 0.0
        whole = (n - pos) // seg
        if whole:
            sums = power[pos: pos + whole * seg].reshape(whole, seg).sum(axis=1, dtype=np.float64)
            self._segments.append(sums)
            pos += whole * seg
        if pos < n:
            self._seg_acc = float(power[pos:].sum(dtype=np.float64))
            self._seg_fill = n - pos

    def result(self) -> Loudness:
        """Gate the 400 ms blocks (absolute -70 LUFS, then relative -10 LU) and integrate."""
        self._flush(final=True)
        segs = np.concatenate(self._segments) if self._segments else np.zeros(0)
        lufs: float | None = None
        if len(segs) >= 4:
            # 400 ms blocks with 75 % overlap: four consecutive 100 ms segments each.
            blocks = (segs[:-3] + segs[1:-2] + segs[2:-1] + segs[3:]) / (4 * self._segment)
            with np.errstate(divide="ignore"):
                levels = -0.691 + 10 * np.log10(blocks)
            kept = blocks[levels > ABSOLUTE_GATE_LUFS]
            if len(kept):
                relative = -0.691 + 10 * math.log10(kept.mean()) + RELATIVE_GATE_LU
                with np.errstate(divide="ignore"):
                    final = kept[-0.691 + 10 * np.log10(kept) > relative]
                if len(final):
                    lufs = -0.691 + 10 * math.log10(final.mean())
        return Loudness(lufs, self._peak, self._samples, self.rate)
