"""The listen model against the reference calibration points (docs/plan.md)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import POP_X, POP_Y, settings

from soundkeep.errors import ConfigError
from soundkeep.plan.config import load_plan_settings
from soundkeep.plan.listens import estimate_listens, listens_at, listens_per_track


@pytest.fixture
def model():  # type: ignore[no-untyped-def]
    return load_plan_settings(settings()).listens


def reference_popularity(n: int, seed: int = 0) -> np.ndarray:
    """Popularity by rank shaped like the reference catalog (see conftest)."""
    q = np.maximum(np.random.default_rng(seed).random(n), 1e-12)
    return np.floor(np.interp(np.log10(q), POP_X, POP_Y)).astype(np.int64)


def test_the_top_tracks_reach_one_to_three_billion(model) -> None:  # type: ignore[no-untyped-def]
    top = listens_at(np.array([100, 98, 98]), model)
    assert np.all((top >= 1e9) & (top <= 3.2e9))


def test_reference_shape(model) -> None:  # type: ignore[no-untyped-def]
    ps = load_plan_settings(settings())
    pop = reference_popularity(2_000_000)
    secondary = np.random.default_rng(1).random(len(pop)) * ps.secondary.maximum
    listens = estimate_listens(pop, secondary, model, ps.secondary.maximum)
    total = listens.sum()
    # At least 70 % of tracks under 1,000 streams.
    assert (listens < 1000).mean() >= 0.70
    # About 0.1 % of tracks at popularity >= 50 carry most listens...
    high = pop >= 50
    assert 0.0005 < high.mean() < 0.002
    assert listens[high].sum() / total > 0.5
    # ...and popularity 50-80 is where most of them come from.
    band = (pop >= 50) & (pop <= 80)
    assert listens[band].sum() > listens[pop > 80].sum()
    assert listens[band].sum() > listens[pop < 50].sum()
    # The top 3 tracks outstream the bottom 20-100 M of a 256 M catalog combined.
    bottom = np.sort(listens)[: int(len(listens) * 100 / 256)]
    top3 = listens_at(np.array([100, 98, 98]), model).sum()
    assert top3 > bottom.mean() * 100e6
    # Popularity 0 stays below 1,000 streams and below popularity 1.
    assert listens[pop == 0].max() < 1000
    assert listens[pop == 0].max() <= listens_at(np.array([1]), model)[0]


def test_popularity_zero_is_ordered_by_secondary_priority(model) -> None:  # type: ignore[no-untyped-def]
    sec = np.array([0.0, 0.5, 1.5, 3.0])
    est = estimate_listens(np.zeros(4), sec, model, 3.0)
    assert np.all(np.diff(est) > 0)
    assert est[-1] == pytest.approx(listens_at(np.array([1]), model)[0])
    assert est[0] == pytest.approx(est[-1] / 10 ** model.zero_decades)


def test_listens_rise_with_popularity(model) -> None:  # type: ignore[no-untyped-def]
    est = listens_at(np.arange(1, 101), model)
    assert np.all(np.diff(est) > 0)


def test_real_listens_win_over_the_estimate(model) -> None:  # type: ignore[no-untyped-def]
    out = listens_per_track(np.array([5.0, np.nan]), np.array([True, False]),
                            np.array([90, 90]), np.zeros(2), model, 3.0)
    assert out[0] == 5.0
    assert out[1] == pytest.approx(listens_at(np.array([90]), model)[0])


@pytest.mark.parametrize("points", [
    [[1, 10]],                       # one point
    [[1, 10], [1, 20]],              # popularity not rising
    [[1, 100], [50, 10]],            # listens falling
    [[0, 10], [50, 100]],            # popularity 0 is not a calibration point
    [[1, -5], [50, 100]],            # negative listens
    "many",                          # not a list
])
def test_bad_calibration_points_are_refused(points: object) -> None:
    with pytest.raises(ConfigError) as err:
        load_plan_settings(settings({"listens.points": points}))
    assert err.value.field == "listens.points"
