"""EBU R128 / BS.1770-4 loudness in numpy, checked against known signals (EBU Tech 3341)."""

from __future__ import annotations

import numpy as np
import pytest
from encfix import sine
from hypothesis import given, settings
from hypothesis import strategies as st

from soundkeep.audio.loudness import LoudnessMeter, k_weighting


def measure(data: np.ndarray, rate: int, names: list[str] | None = None,
            chunk: int = 4096) -> float | None:
    meter = LoudnessMeter(rate, names or ["FL", "FR"][: data.shape[0]])
    for i in range(0, data.shape[1], chunk):
        meter.add_planar(data[:, i:i + chunk])
    return meter.result().integrated_lufs


def program(parts: list[tuple[float, float]], rate: int) -> np.ndarray:
    """Consecutive stereo 1 kHz sines: (level dBFS, seconds) each."""
    return np.concatenate([sine(sec, rate, 2, db) for db, sec in parts], axis=1)


def direct_iir(b: np.ndarray, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The textbook difference equation, one sample at a time (the reference)."""
    y = np.zeros(len(x))
    xs, ys = [0.0] * 4, [0.0] * 4
    for n, v in enumerate(x.tolist()):
        acc = b[0] * v + sum(b[i + 1] * xs[i] for i in range(4)) \
            - sum(a[i + 1] * ys[i] for i in range(4))
        xs = [v, *xs[:-1]]
        ys = [acc, *ys[:-1]]
        y[n] = acc
    return y


def test_k_weighting_matches_the_bs1770_table_at_48k() -> None:
    b, a = k_weighting(48000)
    # BS.1770-4 Tables 1 and 2: the shelf and the high pass at 48 kHz, cascaded.
    shelf_b = [1.53512485958697, -2.69169618940638, 1.19839281085285]
    shelf_a = [1.0, -1.69065929318241, 0.73248077421585]
    hp_b, hp_a = [1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621]
    assert np.allclose(b, np.convolve(shelf_b, hp_b), atol=1e-9)
    assert np.allclose(a, np.convolve(shelf_a, hp_a), atol=1e-9)


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 192000])
def test_block_filter_equals_the_direct_iir(rate: int) -> None:
    rng = np.random.default_rng(rate)
    x = (0.3 * rng.standard_normal((1, 12_345))).astype(np.float32)
    meter = LoudnessMeter(rate, ["FC"])
    # Two calls: the state must carry over from one block run to the next.
    y = np.concatenate([meter._run_filter(x[:, :6400]), meter._run_filter(x[:, 6400:12_288])],
                       axis=1)[0]
    b, a = k_weighting(rate)
    ref = direct_iir(b, a, x[0, :12_288].astype(np.float64))
    assert np.max(np.abs(y - ref)) < 1e-5 * np.max(np.abs(ref))


# EBU Tech 3341 (2016), test signals 1-5: the meter must read -23.0 (or -33.0) +-0.1 LU.
EBU_CASES = [
    ([(-23.0, 20.0)], -23.0),
    ([(-33.0, 20.0)], -33.0),
    ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
    ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
]


@pytest.mark.parametrize("rate", [48000, 44100])
@pytest.mark.parametrize(("parts", "expected"), EBU_CASES)
def test_ebu_tech_3341_cases(parts: list[tuple[float, float]], expected: float,
                             rate: int) -> None:
    lufs = measure(program(parts, rate), rate)
    assert lufs is not None and abs(lufs - expected) <= 0.1


def test_gain_and_peak_for_a_known_sine() -> None:
    meter = LoudnessMeter(48000, ["FL", "FR"])
    meter.add_planar(sine(10.0, 48000, 2, -23.0))
    result = meter.result()
    assert result.replaygain_db() == pytest.approx(5.0, abs=0.1)  # -18 - (-23)
    assert result.r128_gain_q78() is not None and abs(result.r128_gain_q78() or 0) <= 26
    assert result.sample_peak == pytest.approx(10 ** (-23 / 20), rel=1e-4)
    assert result.duration_s == pytest.approx(10.0)


def test_surround_weights_and_lfe() -> None:
    rate = 48000
    s = sine(5.0, rate, 1, -20.0)[0]
    names = ["FL", "FR", "FC", "LFE", "BL", "BR"]

    def only(channel: int) -> np.ndarray:
        data = np.zeros((6, len(s)), np.float32)
        data[channel] = s
        return data

    front = measure(only(0), rate, names)
    back = measure(only(4), rate, names)
    assert front is not None and back is not None
    assert back - front == pytest.approx(10 * np.log10(1.41), abs=0.01)  # +1.5 dB
    assert measure(only(3), rate, names) is None  # the LFE channel is not measured


def test_silence_and_short_signals_have_no_loudness() -> None:
    assert measure(np.zeros((2, 48000), np.float32), 48000) is None
    assert measure(sine(0.3, 48000), 48000) is None  # shorter than one 400 ms block
    meter = LoudnessMeter(48000, ["FL", "FR"])
    assert meter.result().integrated_lufs is None and meter.result().samples == 0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 9000), min_size=1, max_size=12))
def test_chunking_does_not_change_the_result(cuts: list[int]) -> None:
    rng = np.random.default_rng(7)
    data = (0.2 * rng.standard_normal((2, 48000))).astype(np.float32)
    whole = measure(data, 48000, chunk=data.shape[1])
    meter = LoudnessMeter(48000, ["FL", "FR"])
    pos = 0
    for c in cuts:
        meter.add_planar(data[:, pos:pos + c])
        pos += c
    meter.add_interleaved(np.ascontiguousarray(data[:, pos:].T).reshape(-1))
    chunked = meter.result()
    assert whole is not None and chunked.integrated_lufs is not None
    assert chunked.integrated_lufs == pytest.approx(whole, abs=1e-4)
    assert chunked.samples == 48000
