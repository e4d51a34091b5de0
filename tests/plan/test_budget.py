"""The knapsack: convex-hull greedy against brute force, its LP bound, budget thresholds."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from soundkeep.plan import budget


def brute_force(b: np.ndarray, v: np.ndarray, valid: np.ndarray, cap: int | None) -> float:
    """The integer optimum by enumeration (-1 = no audio for that row)."""
    n, a = b.shape
    best = 0.0
    for choice in itertools.product(range(-1, a), repeat=n):
        if any(c >= 0 and not valid[i, c] for i, c in enumerate(choice)):
            continue
        size = sum(int(b[i, c]) for i, c in enumerate(choice) if c >= 0)
        if cap is not None and size > cap:
            continue
        best = max(best, sum(float(v[i, c]) for i, c in enumerate(choice) if c >= 0))
    return best


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n = draw(st.integers(1, 6))
    a = draw(st.integers(1, 3))
    b = np.array(draw(st.lists(st.lists(st.integers(1, 50), min_size=a, max_size=a),
                               min_size=n, max_size=n)), dtype=np.int64)
    v = np.array(draw(st.lists(st.lists(st.integers(0, 100), min_size=a, max_size=a),
                               min_size=n, max_size=n)), dtype=np.float64)
    valid = np.array(draw(st.lists(st.lists(st.booleans(), min_size=a, max_size=a),
                                   min_size=n, max_size=n)), dtype=bool).reshape(n, a)
    cap = draw(st.integers(0, int(b.sum())))
    return b, v, valid, cap


@settings(max_examples=300, deadline=None)
@given(catalogs())
def test_greedy_is_within_one_increment_of_the_optimum(case: tuple) -> None:
    b, v, valid, cap = case
    inc = budget.hull_increments(b, v, valid)
    choice = budget.solve(inc, cap)
    # Feasible, and its value is what the chosen options are worth.
    rows = np.flatnonzero(choice.option >= 0)
    opts = choice.option[rows]
    assert valid[rows, opts].all()
    assert int(b[rows, opts].sum()) == choice.bytes_used <= cap
    assert abs(float(v[rows, opts].sum()) - choice.objective) < 1e-6
    opt = brute_force(b, v, valid, cap)
    # greedy <= OPT <= LP bound <= greedy + one increment.
    assert choice.objective <= opt + 1e-6
    assert opt <= choice.lp_bound + 1e-6
    if choice.critical is not None:
        assert choice.lp_bound <= choice.objective + inc.d_value[choice.critical] + 1e-6
    else:
        assert abs(opt - choice.objective) < 1e-6


@settings(max_examples=100, deadline=None)
@given(catalogs())
def test_unlimited_budget_takes_the_best_option_of_every_row(case: tuple) -> None:
    b, v, valid, _ = case
    choice = budget.solve(budget.hull_increments(b, v, valid), None)
    assert abs(choice.objective - brute_force(b, v, valid, None)) < 1e-6


@settings(max_examples=100, deadline=None)
@given(catalogs())
def test_budget_to_take_is_the_threshold_of_each_increment(case: tuple) -> None:
    b, v, valid, cap = case
    inc = budget.hull_increments(b, v, valid)
    choice = budget.solve(inc, cap)
    for i in range(len(inc.eff)):
        need = budget.budget_to_take(inc, i)
        assert bool(choice.taken[i]) == (need <= cap)
        # Exactly at the threshold it is taken, one byte less it is not.
        assert budget.solve(inc, need).taken[i]
        assert not budget.solve(inc, need - 1).taken[i]


def test_hull_drops_dominated_and_under_hull_options() -> None:
    # Row 0: option 1 costs more and is worth less than option 0 (dominated).
    # Row 1: option 0 lies under the chord from the origin to option 1.
    b = np.array([[10, 20], [10, 20]])
    v = np.array([[5.0, 4.0], [1.0, 10.0]])
    inc = budget.hull_increments(b, v, np.ones((2, 2), dtype=bool))
    assert sorted(zip(inc.row.tolist(), inc.option.tolist(), strict=True)) == [(0, 0), (1, 1)]


def test_identical_options_go_to_the_first_configured_whatever_the_template_order() -> None:
    # Rows off the template (a held file's own size) are sorted starting from the template's
    # byte order; options alike in bytes and value still go to the first configured one.
    b = np.array([[50, 50, 80], [90, 40, 40]])
    v = np.array([[3.0, 3.0, 4.0], [3.0, 2.0, 2.0]])
    valid = np.ones((2, 3), dtype=bool)
    uniform = np.zeros(2, dtype=bool)
    for rates in ([300.0, 200.0, 100.0], [100.0, 200.0, 300.0], [200.0, 100.0, 300.0]):
        inc = budget.hull_increments(b, v, valid, uniform=uniform,
                                     template=(rates, [1.0, 0.5, 0.2]))
        taken = sorted(zip(inc.row.tolist(), inc.option.tolist(), strict=True))
        assert taken == [(0, 0), (0, 2), (1, 0), (1, 1)], (rates, taken)


def test_increments_of_a_row_fall_in_efficiency() -> None:
    rng = np.random.default_rng(1)
    b = np.sort(rng.integers(1, 1000, (500, 3)), axis=1)
    v = np.sort(rng.random((500, 3)) * 100, axis=1)
    inc = budget.hull_increments(b, v, np.ones_like(b, dtype=bool))
    for row in range(500):
        mine = np.flatnonzero(inc.row == row)
        eff = inc.eff[mine[np.argsort(inc.step[mine])]]
        assert np.all(np.diff(eff) < 0)


def test_selection_matches_a_full_sort_on_a_large_case() -> None:
    # More increments than the selection sorts directly, with many ties.
    rng = np.random.default_rng(7)
    n = 200_000
    dur = rng.integers(1, 20, n) * 1000
    b = np.stack([dur * 20, dur * 9], axis=1)
    listens = rng.integers(1, 30, n).astype(float)
    v = np.stack([listens, 0.9 * listens], axis=1)
    inc = budget.hull_increments(b, v, np.ones((n, 2), dtype=bool))
    cap = int(inc.d_bytes.sum() * 0.37)
    choice = budget.solve(inc, cap)
    order = np.lexsort((inc.key(np.arange(len(inc.eff))), -inc.eff))
    cum = np.cumsum(inc.d_bytes[order])
    k = int(np.searchsorted(cum, cap, side="right"))
    expected = np.zeros(len(order), dtype=bool)
    expected[order[:k]] = True
    assert np.array_equal(choice.taken, expected)
    assert choice.critical == int(order[k])


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3), st.integers(0, 10_000), st.booleans())
def test_the_shared_hull_shape_gives_the_general_answer(a: int, seed: int, tiny: bool) -> None:
    # Rows whose options scale one template (size x rate, listens x weight) take a shortcut;
    # it must give the same increments as the general path, whatever the rounding.
    rng = np.random.default_rng(seed)
    n = 300
    rates = rng.integers(1, 400, a).astype(float)
    weights = rng.random(a)
    size = rng.integers(1, 3 if tiny else 100_000, n)
    listens = rng.random(n) * 1000 + 1e-3
    b = np.maximum(np.rint(size[:, None] * rates[None, :] / 8), 1).astype(np.int64)
    v = listens[:, None] * weights[None, :]
    valid = np.ones((n, a), dtype=bool)
    uniform = rng.random(n) < 0.8
    fast = budget.hull_increments(b, v, valid, uniform=uniform, template=(rates, weights))
    slow = budget.hull_increments(b, v, valid)
    key = lambda inc: sorted(zip(inc.row.tolist(), inc.option.tolist(),  # noqa: E731
                                 inc.d_bytes.tolist(), strict=True))
    assert key(fast) == key(slow)
    cap = int(rng.integers(0, int(b.max(axis=1).sum()) + 1))
    assert np.array_equal(budget.solve(fast, cap).option, budget.solve(slow, cap).option)
