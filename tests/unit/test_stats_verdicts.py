"""Drift verdicts (DESIGN.md principle 4, section 6 "Verdicts"; docs/drift.md).

The noise floors are checked against what they claim: the share of stationary windows
(raw values drawn from the reference's population, encoded by the exporter's own path)
whose p-value falls below a level is that level. Holm's procedure is checked against its
textbook definition (adjusted p-values), bounded influence against a window with one
extreme value, power against a known shift, and the whole decision on real data halves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.datasets import load_breast_cancer, load_wine

from modelmon.config import ConfigError, DriftConfig, ModelConfig, config_from_dict
from modelmon.model import resolve_rules
from modelmon.profile import Profile
from modelmon.stats.binning import EVENTS_SLOT, Layout, encode_categorical, encode_numeric
from modelmon.stats.multiplicity import holm_levels
from modelmon.stats.report import MIN_VERDICT_VALUES, Verdicts, column_statistics


def verdicts_for(profile: Profile, method: str = "auto", alpha: float = 0.01) -> Verdicts:
    layout = Layout(profile)
    config = ModelConfig(name="m", reference=Path("p"), drift=DriftConfig(method=method))
    rules, methods = resolve_rules(config, profile, layout)
    return Verdicts(layout, rules, methods, alpha)


def encode(layout: Layout, columns: dict[str, Any]) -> np.ndarray:
    """The additive vector of a window given as raw values per column."""
    vector = layout.zeros()
    vector[EVENTS_SLOT] = len(next(iter(columns.values())))
    for slots in layout.columns:
        values = columns[slots.column.name]
        if slots.numeric:
            encode_numeric(slots, np.asarray(values, dtype=np.float64), 0, vector)
        else:
            encode_categorical(slots, [str(v) for v in values], 0, vector)
    return vector


# --- Holm against its definition --------------------------------------------------------


def holm_by_definition(pvalues: list[float], alpha: float) -> list[bool]:
    """Reject where the Holm-adjusted p-value, max over j <= i of (m - j) p_(j), is <= alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    rejected = [False] * m
    running = 0.0
    for step, i in enumerate(order):
        running = max(running, min(1.0, (m - step) * pvalues[i]))
        rejected[i] = running <= alpha
    return rejected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    st.sampled_from([0.001, 0.01, 0.05, 0.2]),
)
def test_holm_levels_reject_exactly_what_holm_rejects(pvalues: list[float], alpha: float) -> None:
    levels = holm_levels(pvalues, alpha)
    assert [p <= lv for p, lv in zip(pvalues, levels, strict=True)] == holm_by_definition(
        pvalues, alpha
    )
    assert all(alpha / len(pvalues) <= lv <= alpha for lv in levels)


def test_holm_is_bonferroni_for_the_smallest_and_alpha_for_the_last() -> None:
    assert holm_levels([0.001, 0.002, 0.003], 0.03) == pytest.approx([0.01, 0.015, 0.03])


# --- noise floors: calibrated against windows drawn from the population -----------------


def normal_profile(make_profile: Any, rows: int = 5000, seed: int = 0) -> Profile:
    rng = np.random.default_rng(seed)
    data = [
        {"x": float(v), "c": str(c)}
        for v, c in zip(
            rng.normal(10.0, 2.0, rows),
            rng.choice(["a", "b", "c", "d", "rare"], rows, p=[0.4, 0.3, 0.2, 0.095, 0.005]),
            strict=True,
        )
    ]
    built: Profile = make_profile(data, "stationary").profile
    return built


@pytest.mark.parametrize("method", ["wasserstein", "jensen_shannon", "psi"])
@pytest.mark.parametrize("n", [30, 300, 3000])
def test_pvalues_of_stationary_windows_are_calibrated(
    make_profile: Any, method: str, n: int
) -> None:
    """Windows from the reference's population: P(p < level) is level, within binomial
    error, for a continuous column and a categorical column with a rare category."""
    profile = normal_profile(make_profile)
    verdicts = verdicts_for(profile, method)
    rng = np.random.default_rng(n)
    windows = 1500
    pvalues: dict[str, list[float]] = {"x": [], "c": []}
    for _ in range(windows):
        vector = encode(
            verdicts.layout,
            {
                "x": rng.normal(10.0, 2.0, n),
                "c": rng.choice(["a", "b", "c", "d", "rare"], n, p=[0.4, 0.3, 0.2, 0.095, 0.005]),
            },
        )
        for slots in verdicts.layout.columns:
            stats_ = column_statistics(slots, vector)
            pvalues[slots.column.name].append(verdicts.pvalue(slots, vector, stats_, n))
    for name, values in pvalues.items():
        p = np.asarray(values)
        for level in (0.05, 0.01):
            hits = int((p < level).sum())
            # The model may be conservative (the fit widens its spread on purpose), but
            # never lets through more than a binomial's 99.9% bound above the level.
            upper = stats.binom.ppf(0.999, windows, level)
            assert hits <= upper, (name, level, hits, upper)
        # ... and it is not so conservative that it stops seeing anything.
        assert (p < 0.2).mean() > 0.08, name


def test_floor_is_the_quantile_its_pvalue_inverts(make_profile: Any) -> None:
    verdicts = verdicts_for(normal_profile(make_profile), "wasserstein")
    for key, null in verdicts.nulls.items():
        for n in (30, 77, 300, 5000, 10**6):
            for level in (0.05, 0.01, 1e-4):
                floor = null.floor(n, level)
                assert null.pvalue(floor, n) == pytest.approx(level, rel=1e-6), (key, n, level)


def test_floors_shrink_with_the_window_and_stop_at_the_reference_noise(make_profile: Any) -> None:
    """Small windows are judged by the noise floor, large ones by the effect threshold;
    the two-sample floor stops shrinking once n passes N (the reference's own noise)."""
    verdicts = verdicts_for(normal_profile(make_profile, rows=2000), "wasserstein")
    null = verdicts.nulls[("feature", "x")]
    floors = [null.floor(n, 0.01) for n in (30, 100, 300, 1000, 10**4, 10**6)]
    assert floors == sorted(floors, reverse=True)
    assert floors[0] > 0.1 > floors[4]  # above the effect threshold at 30, below at 10^4
    # As n grows past N = 2000 only the reference's own noise is left: the effective
    # size n*N/(n+N) tends to N, twice its value at n = N, so the floor tends to about
    # 1/sqrt(2) of the floor at n = N, and never to zero.
    assert floors[-1] > 0.6 * null.floor(2000, 0.01)


# --- the verdict ----------------------------------------------------------------------------


def cancer_halves(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    data = load_breast_cancer()
    order = np.random.default_rng(seed).permutation(len(data.data))
    half = len(order) // 2
    names = [n.replace(" ", "_") for n in data.feature_names]
    return data.data[order[:half]], data.data[order[half:]], names


def table_profile(make_profile: Any, x: np.ndarray, names: list[str], label: str) -> Profile:
    rows = [dict(zip(names, map(float, r), strict=True)) for r in x]
    built: Profile = make_profile(rows, label).profile
    return built


@pytest.mark.parametrize("method", ["auto", "wasserstein", "jensen_shannon"])
def test_stationary_real_data_raises_no_false_alarms(make_profile: Any, method: str) -> None:
    """Breast cancer features: windows from the half that was not profiled. Before noise
    floors, fixed thresholds flagged about half of such windows at n = 100."""
    ref, other, names = cancer_halves()
    verdicts = verdicts_for(table_profile(make_profile, ref, names, "cancer"), method)
    rng = np.random.default_rng(5)
    flagged = dataset = 0
    windows = 150
    for i in range(windows):
        n = (30, 100, 250)[i % 3]
        rows = other[rng.choice(len(other), n, replace=False)]
        report = verdicts.report(
            encode(verdicts.layout, dict(zip(names, rows.T, strict=True))), 0.5
        )
        flagged += sum(c.drifted for c in report.columns)
        dataset += bool(report.dataset_drift)
    assert flagged <= 0.01 * windows * len(names)
    assert dataset == 0


def test_a_half_std_shift_in_one_of_twenty_features_is_detected_at_300(
    make_profile: Any,
) -> None:
    rng = np.random.default_rng(3)
    names = [f"f{i}" for i in range(20)]
    ref = rng.normal(0.0, 1.0, (4000, 20))
    verdicts = verdicts_for(table_profile(make_profile, ref, names, "twenty"))
    detected = 0
    for _ in range(40):
        window = rng.normal(0.0, 1.0, (300, 20))
        window[:, 7] += 0.5
        report = verdicts.report(
            encode(verdicts.layout, dict(zip(names, window.T, strict=True))), 0.5
        )
        drifted = {c.column for c in report.columns if c.drifted}
        detected += "f7" in drifted
        assert drifted <= {"f7"}
    assert detected >= 36  # >= 90%


def test_one_extreme_value_changes_no_verdict_and_moves_wasserstein_by_about_1_over_n(
    make_profile: Any,
) -> None:
    ref, other, names = cancer_halves(seed=1)
    verdicts = verdicts_for(table_profile(make_profile, ref, names, "cancer1"), "wasserstein")
    rng = np.random.default_rng(9)
    n = 1000
    for trial in range(20):
        rows = other[rng.choice(len(other), n, replace=True)]
        columns = dict(zip(names, rows.T.copy(), strict=True))
        before = verdicts.report(encode(verdicts.layout, columns), 0.5)
        column = names[trial % len(names)]
        columns[column] = columns[column].copy()
        columns[column][0] = -9999.0 if trial % 2 else 1e12
        after = verdicts.report(encode(verdicts.layout, columns), 0.5)
        assert [c.drifted for c in before.columns] == [c.drifted for c in after.columns]
        assert before.dataset_drift == after.dataset_drift
        slots = verdicts.layout.by_key[("feature", column)]
        low, high = slots.clip_range
        b = next(c for c in before.columns if c.column == column).statistics["wasserstein"]
        a = next(c for c in after.columns if c.column == column).statistics["wasserstein"]
        # One value moves by at most the clip range's width, over n, in std units.
        assert abs(a - b) <= (high - low) / n / slots.column.std + 1e-12
    # The extreme values are still counted as out of range.
    vector = encode(verdicts.layout, {k: np.full(3, 1e12) for k in names})
    assert vector[verdicts.layout.columns[0].quality("out_of_range")] == 3


def test_wasserstein_of_values_inside_the_clip_range_still_equals_scipy(make_profile: Any) -> None:
    wine = load_wine()
    x = np.asarray(wine.data[:, list(wine.feature_names).index("alcohol")])
    profile = table_profile(make_profile, x[:89, None], ["alcohol"], "alcohol")
    window = x[89:] + 0.3
    slots = Layout(profile).by_key[("feature", "alcohol")]
    low, high = slots.clip_range
    assert low < window.min()
    assert window.max() < high
    ours = column_statistics(slots, encode(Layout(profile), {"alcohol": window}))
    exact = stats.wasserstein_distance(x[:89], window) / x[:89].std()
    # Within a fine bin of the exact distance (documented tolerance), as before clipping.
    assert ours["wasserstein"] == pytest.approx(exact, abs=0.05)


def test_no_verdict_below_the_minimum_number_of_values(make_profile: Any) -> None:
    verdicts = verdicts_for(normal_profile(make_profile), "wasserstein")
    rng = np.random.default_rng(0)
    small = MIN_VERDICT_VALUES - 1
    report = verdicts.report(
        encode(verdicts.layout, {"x": rng.normal(50.0, 2.0, small), "c": ["a"] * small}), 0.5
    )
    assert all(c.statistics for c in report.columns)  # statistics are still read
    assert not any(c.drifted for c in report.columns)
    assert all(math.isnan(c.pvalue) and math.isnan(c.threshold) for c in report.columns)
    assert report.dataset_drift is None


def test_effective_threshold_is_the_effect_threshold_for_large_windows(make_profile: Any) -> None:
    verdicts = verdicts_for(normal_profile(make_profile), "wasserstein")
    rng = np.random.default_rng(1)
    big = encode(verdicts.layout, {"x": rng.normal(10.0, 2.0, 200_000), "c": ["a"] * 200_000})
    small = encode(verdicts.layout, {"x": rng.normal(10.0, 2.0, 50), "c": ["a"] * 50})
    x_big = verdicts.report(big, 0.5).columns[0]
    x_small = verdicts.report(small, 0.5).columns[0]
    assert x_big.threshold == 0.1  # the noise floor is below the effect threshold
    assert x_small.threshold > 0.2  # at 50 values the noise floor decides
    assert x_small.effect_threshold == 0.1


def test_pvalue_methods_compare_the_pvalue_with_the_corrected_alpha(make_profile: Any) -> None:
    ref, other, names = cancer_halves()
    verdicts = verdicts_for(table_profile(make_profile, ref, names, "cancer2"), "ks", alpha=0.05)
    window = other.copy()
    window[:, 0] += 2 * ref[:, 0].std()
    report = verdicts.report(encode(verdicts.layout, dict(zip(names, window.T, strict=True))), 0.5)
    for c in report.columns:
        assert c.threshold == pytest.approx(min(c.level, 0.05))
        assert c.drifted == (c.pvalue <= min(c.level, 0.05))
    first = report.columns[0]
    assert first.drifted
    assert first.level == pytest.approx(0.05 / len(names))


# --- configuration ----------------------------------------------------------------------


def test_alpha_is_set_for_all_models_and_overridden_per_model(tmp_path: Path) -> None:
    raw = {
        "drift": {"alpha": 0.05},
        "models": [
            {"name": "a", "reference": "a.json"},
            {"name": "b", "reference": "b.json", "drift": {"alpha": 0.001}},
        ],
    }
    config = config_from_dict(raw, tmp_path)
    assert [m.drift.alpha for m in config.models] == [0.05, 0.001]
    assert config_from_dict({"models": raw["models"][:1]}, tmp_path).models[0].drift.alpha == 0.01


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"drift": {"alpha": 1.5}}, "drift.alpha: expected a level between 0 and 1"),
        ({"drift": {"alpha": "x"}}, "drift.alpha"),
        ({"drift": {"alpha": 0.01, "share": 0.5}}, "drift"),
    ],
)
def test_bad_alpha_names_its_key(tmp_path: Path, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**raw, "models": [{"name": "a", "reference": "a.json"}]}, tmp_path)
    model = {"name": "a", "reference": "a.json", "drift": {"alpha": 0}}
    with pytest.raises(ConfigError, match=r"models\[0\]\.drift\.alpha"):
        config_from_dict({"models": [model]}, tmp_path)


def test_numeric_columns_with_ties_and_empty_fine_bins_get_verdicts(make_profile: Any) -> None:
    """Rounded ages: many ties, so some fine bins are empty in the reference (their mean
    is unknown). The verdict must still be made, and stay quiet on stationary data."""
    rng = np.random.default_rng(2)
    ages = rng.normal(40, 11, 4000).clip(18, 90).round()
    profile = table_profile(make_profile, ages[:, None], ["age"], "ages")
    assert any(r == 0 for r in profile.columns[0].fine_ratios)
    verdicts = verdicts_for(profile, "wasserstein")
    flagged = 0
    for _ in range(100):
        window = rng.normal(40, 11, 200).clip(18, 90).round()
        reading = verdicts.report(encode(verdicts.layout, {"age": window}), 0.5).columns[0]
        assert 0 < reading.pvalue <= 1
        assert math.isfinite(reading.threshold)
        flagged += reading.drifted
    assert flagged <= 3
    shifted = rng.normal(45, 11, 200).clip(18, 90).round()
    assert verdicts.report(encode(verdicts.layout, {"age": shifted}), 0.5).columns[0].drifted


def test_a_rare_flag_column_is_compared_over_its_values(make_profile: Any) -> None:
    """A 0/1 column with 2% ones has a single coarse quantile bin; it must still be
    compared over its two values, so that a jump of the ones' share is seen."""
    rng = np.random.default_rng(4)
    flags = (rng.random(5000) < 0.02).astype(float)
    profile = table_profile(make_profile, flags[:, None], ["flag"], "flags")
    assert len(profile.columns[0].coarse_edges) <= 1  # the coarse bins collapsed
    verdicts = verdicts_for(profile)
    stationary = (rng.random(500) < 0.02).astype(float)
    quiet = verdicts.report(encode(verdicts.layout, {"flag": stationary}), 0.5).columns[0]
    assert not quiet.drifted
    window = (rng.random(500) < 0.2).astype(float)
    reading = verdicts.report(encode(verdicts.layout, {"flag": window}), 0.5).columns[0]
    assert reading.drifted
    # The statistics are over the two values (and the bin above the reference's maximum,
    # with the rule of succession's share 1/(N+1)): Jensen-Shannon equals scipy's.
    unseen = 1 / (flags.size + 1)
    ref = np.array([1 - flags.mean(), flags.mean(), 0.0]) * (1 - unseen) + [0, 0, unseen]
    win = np.array([1 - window.mean(), window.mean(), 0.0])
    expected = float(jensenshannon(ref, win, base=2))
    assert reading.statistics["jensen_shannon"] == pytest.approx(expected, rel=1e-9)


def test_values_above_the_maximum_of_a_few_valued_column_are_seen(make_profile: Any) -> None:
    """A column constant in the reference (0) that reads 4 in the window: the last fine
    bin would mix 4 with the maximum 0; the values above the maximum are compared apart."""
    rng = np.random.default_rng(6)
    rows = np.column_stack([np.zeros(3000), rng.integers(0, 4, 3000)])
    profile = table_profile(make_profile, rows, ["constant", "small"], "few")
    verdicts = verdicts_for(profile)
    shifted = {"constant": np.full(300, 4.0), "small": rng.integers(0, 4, 300)}
    drifted = {
        c.column: c.drifted for c in verdicts.report(encode(verdicts.layout, shifted), 0.5).columns
    }
    assert drifted == {"constant": True, "small": False}
    flagged = 0
    for _ in range(100):
        quiet = {"constant": np.zeros(300), "small": rng.integers(0, 4, 300)}
        flagged += sum(
            c.drifted for c in verdicts.report(encode(verdicts.layout, quiet), 0.5).columns
        )
    assert flagged <= 2
