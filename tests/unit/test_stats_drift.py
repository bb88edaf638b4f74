"""Drift statistics (DESIGN.md section 6) against scipy and numpy on the same data.

The reference is one half of a real data set (sklearn's breast cancer and wine
features), the window the other half, shifted or scaled. Our statistics go through the
whole path the exporter uses: a profile built by ``build_profile``, the window encoded
into the additive vector, then :func:`modelmon.stats.report.column_statistics`. The
oracle is scipy on the raw values, or the definition written out here with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.datasets import load_breast_cancer, load_wine

from modelmon.config import config_from_dict
from modelmon.model import resolve_rules
from modelmon.profile import Profile
from modelmon.stats import drift
from modelmon.stats.binning import Layout, encode_categorical, encode_numeric
from modelmon.stats.report import column_statistics

EPSILON = 1e-4  # DESIGN.md section 6: PSI shares below this are raised to it

CANCER = load_breast_cancer()
WINE = load_wine()
CANCER_CONTINUOUS = ["mean radius", "mean texture", "mean perimeter", "mean area", "worst area"]
WINE_CONTINUOUS = ["alcohol", "malic_acid", "color_intensity", "proline"]


def halves(values: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of ``values`` into reference and window halves."""
    order = np.random.default_rng(seed).permutation(values.size)
    half = values.size // 2
    return values[order[:half]], values[order[half:]]


def feature(dataset: Any, name: str) -> np.ndarray:
    column = list(dataset.feature_names).index(name)
    return np.asarray(dataset.data[:, column], dtype=np.float64)


TRANSFORMS = {
    "same": lambda x, ref: x,
    "shift_half_std": lambda x, ref: x + 0.5 * ref.std(),
    "shift_one_std": lambda x, ref: x + ref.std(),
    "scale_1_5": lambda x, ref: ref.mean() + 1.5 * (x - ref.mean()),
}
CASES = [
    pytest.param(ds, name, t, id=f"{label}-{name.replace(' ', '_')}-{t}")
    for ds, label, names in ((CANCER, "cancer", CANCER_CONTINUOUS), (WINE, "wine", WINE_CONTINUOUS))
    for name in names
    for t in TRANSFORMS
]


def numeric_profile(make_profile: Any, reference: np.ndarray) -> Profile:
    rows = [{"x": float(v)} for v in reference]
    built: Profile = make_profile(rows, "numeric").profile
    return built


def window_stats(profile: Profile, role: str, column: str, window: Any) -> dict[str, float]:
    """Our statistics of ``window`` (raw values) for one column, via the additive vector."""
    layout = Layout(profile)
    slots = layout.by_key[(role, column)]
    vector = layout.zeros()
    if slots.numeric:
        encode_numeric(slots, np.asarray(window, dtype=np.float64), 0, vector)
    else:
        encode_categorical(slots, list(window), 0, vector)
    return column_statistics(slots, vector)


def coarse_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Shares of ``values`` in bins (-inf, e1), [e1, e2), ..., [e_last, +inf)."""
    idx = np.searchsorted(np.asarray(edges), values, side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    shares: np.ndarray = counts / counts.sum()
    return shares


def psi_by_definition(reference: np.ndarray, window: np.ndarray) -> float:
    r = np.maximum(reference / reference.sum(), EPSILON)
    c = np.maximum(window / window.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


# --- each statistic against its oracle, on real data -------------------------------------


@pytest.mark.parametrize(("dataset", "name", "transform"), CASES)
def test_numeric_statistics_match_scipy(
    make_profile: Any, dataset: Any, name: str, transform: str
) -> None:
    ref, other = halves(feature(dataset, name))
    window = TRANSFORMS[transform](other, ref)
    profile = numeric_profile(make_profile, ref)
    col = profile.column("feature", "x")
    assert col is not None
    ours = window_stats(profile, "feature", "x", window)

    exact_ks = stats.ks_2samp(ref, window)
    assert ours["ks"] == pytest.approx(exact_ks.statistic, abs=0.02)

    # The p-value is the asymptotic one for the KS statistic, the reference and window sizes.
    assert ours["ks_pvalue"] == pytest.approx(drift.ks_pvalue(ours["ks"], ref.size, window.size))

    # PSI and JS over coarse bins: the shares are computed here from the raw values.
    r = coarse_shares(ref, col.coarse_edges)
    c = coarse_shares(window, col.coarse_edges)
    assert ours["psi"] == pytest.approx(psi_by_definition(r, c), rel=1e-9, abs=1e-12)
    assert ours["jensen_shannon"] == pytest.approx(
        float(jensenshannon(r, c, base=2)), rel=1e-9, abs=1e-9
    )

    if transform != "same":
        exact_w = stats.wasserstein_distance(ref, window) / ref.std()
        assert ours["wasserstein"] == pytest.approx(exact_w, rel=0.10)


@pytest.mark.parametrize("transform", ["same", "shift_half_std", "scale_1_5"])
def test_coarse_edges_and_shares_are_the_reference_quantiles(
    make_profile: Any, transform: str
) -> None:
    ref, _ = halves(feature(CANCER, "mean area"))
    profile = numeric_profile(make_profile, ref)
    col = profile.column("feature", "x")
    assert col is not None
    expected = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    np.testing.assert_allclose(col.coarse_edges, expected, rtol=1e-12)
    np.testing.assert_allclose(col.coarse_ratios, coarse_shares(ref, col.coarse_edges))


@pytest.mark.parametrize(
    ("n", "m"), [(284, 285), (100, 1000), (1000, 100), (50, 37), (5000, 120), (89, 89)]
)
@pytest.mark.parametrize("shift", [0.0, 0.2, 0.6])
def test_ks_pvalue_equals_scipy_asymptotic(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n * 7 + m)
    a = rng.normal(0, 1, n)
    b = rng.normal(shift, 1, m)
    scipy_result = stats.ks_2samp(a, b, method="asymp")
    ours = drift.ks_pvalue(float(scipy_result.statistic), n, m)
    assert ours == pytest.approx(scipy_result.pvalue, rel=1e-9, abs=1e-300)


def test_ks_pvalue_rejects_empty_samples() -> None:
    with pytest.raises(ValueError, match="n_reference"):
        drift.ks_pvalue(0.5, 0, 10)


def test_jensen_shannon_equals_scipy_on_wine_classes() -> None:
    reference = np.bincount(WINE.target).astype(float)
    window = np.array([10.0, 40.0, 5.0])
    assert drift.jensen_shannon_distance(reference, window) == pytest.approx(
        float(jensenshannon(reference, window, base=2)), rel=1e-12
    )


def test_chi2_pvalue_equals_scipy_chisquare() -> None:
    shares = np.bincount(WINE.target) / WINE.target.size
    for counts in ([20, 25, 15], [60, 10, 2], [1, 1, 1]):
        observed = np.asarray(counts, dtype=float)
        expected = shares * observed.sum()
        assert drift.chi2_pvalue(shares, observed) == pytest.approx(
            stats.chisquare(observed, expected).pvalue, rel=1e-9
        )


def test_chi2_of_a_category_unseen_in_the_reference_is_tiny_not_nan() -> None:
    p = drift.chi2_pvalue([0.5, 0.5, 0.0], [50, 40, 30])
    assert np.isfinite(p)
    assert p < 1e-6


@pytest.mark.parametrize("window", [[55, 25, 20], [30, 30, 40], [90, 5, 5]])
def test_categorical_chi2_of_a_window_equals_scipy_over_the_reference_categories(
    make_profile: Any, window: list[int]
) -> None:
    """Reference categories cover the data; __other__ is empty in reference and window.

    The goodness-of-fit test is over the categories the data has: an empty ``__other__``
    bin (no reference share, no window value) must not add a degree of freedom.
    """
    reference = {"DE": 50, "FR": 30, "ES": 20}
    rows = [{"country": c} for c, n in reference.items() for _ in range(n)]
    profile = make_profile(rows, "categorical").profile
    values = [c for c, n in zip(reference, window, strict=True) for _ in range(n)]
    ours = window_stats(profile, "feature", "country", values)
    shares = np.array(list(reference.values()), dtype=float) / 100
    observed = np.asarray(window, dtype=float)
    expected = stats.chisquare(observed, shares * observed.sum()).pvalue
    assert ours["chi2_pvalue"] == pytest.approx(expected, rel=1e-6)
    assert ours["psi"] == pytest.approx(psi_by_definition(shares, observed), rel=1e-9)
    assert ours["jensen_shannon"] == pytest.approx(
        float(jensenshannon(shares, observed, base=2)), rel=1e-9
    )


def test_psi_docstring_example_by_hand() -> None:
    # (0.9 - 0.5) ln(0.9/0.5) + (0.1 - 0.5) ln(0.1/0.5)
    by_hand = 0.4 * np.log(1.8) + (-0.4) * np.log(0.2)
    assert drift.population_stability_index([0.5, 0.5], [0.9, 0.1]) == pytest.approx(by_hand)


def test_psi_floors_empty_bins_at_epsilon() -> None:
    by_hand = (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (1.0 - 0.5) * np.log(1.0 / 0.5)
    assert drift.population_stability_index([1, 1], [0, 10]) == pytest.approx(by_hand)


def test_wasserstein_uses_a_floor_of_one_thousandth_for_the_reference_std() -> None:
    assert drift.wasserstein_normalized([5.0], [1], [5.5], [1], 0.0) == pytest.approx(500.0)
    assert drift.wasserstein_normalized([5.0], [1], [5.5], [1], 2.0) == pytest.approx(0.25)


# --- properties ----------------------------------------------------------------------------

counts_strategy = st.lists(
    st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=30
).filter(lambda xs: sum(xs) > 0)


@st.composite
def paired_counts(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    n = draw(st.integers(min_value=1, max_value=30))
    element = st.floats(min_value=0, max_value=1e6, allow_nan=False)
    a = draw(st.lists(element, min_size=n, max_size=n).filter(lambda xs: sum(xs) > 0))
    b = draw(st.lists(element, min_size=n, max_size=n).filter(lambda xs: sum(xs) > 0))
    return a, b


@settings(max_examples=50, deadline=None)
@given(counts_strategy)
def test_psi_of_a_distribution_with_itself_is_zero(counts: list[float]) -> None:
    assert drift.population_stability_index(counts, counts) == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(paired_counts())
def test_psi_is_never_negative(pair: tuple[list[float], list[float]]) -> None:
    a, b = pair
    assert drift.population_stability_index(a, b) >= 0.0
    r = np.asarray(a) / sum(a)
    c = np.asarray(b) / sum(b)
    assert drift.population_stability_index(a, b) == pytest.approx(
        psi_by_definition(r, c), rel=1e-9, abs=1e-12
    )


@settings(max_examples=50, deadline=None)
@given(paired_counts())
def test_jensen_shannon_is_symmetric_bounded_and_equals_scipy(
    pair: tuple[list[float], list[float]],
) -> None:
    a, b = pair
    forward = drift.jensen_shannon_distance(a, b)
    assert forward == pytest.approx(drift.jensen_shannon_distance(b, a), abs=1e-12)
    assert 0.0 <= forward <= 1.0
    assert forward == pytest.approx(float(jensenshannon(a, b, base=2)), abs=1e-7)


@settings(max_examples=50, deadline=None)
@given(counts_strategy)
def test_identical_distributions_have_no_ks_or_wasserstein_distance(counts: list[float]) -> None:
    assert drift.ks_statistic(counts, counts) == pytest.approx(0.0, abs=1e-12)
    points = np.arange(len(counts), dtype=float)
    assert drift.wasserstein_normalized(points, counts, points, counts, 1.0) == pytest.approx(
        0.0, abs=1e-9
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
    st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
)
def test_wasserstein_of_unbinned_points_equals_scipy(a: list[float], b: list[float]) -> None:
    ours = drift.wasserstein_normalized(a, np.ones(len(a)), b, np.ones(len(b)), 1.0)
    assert ours == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)


# --- rules and the auto method ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "statistic", "threshold", "drifted", "kept"),
    [
        ("psi", "psi", 0.2, 0.2, 0.199),
        ("ks", "ks_pvalue", 0.05, 0.049, 0.05),
        ("wasserstein", "wasserstein", 0.1, 0.1, 0.099),
        ("jensen_shannon", "jensen_shannon", 0.1, 0.1, 0.099),
        ("chi2", "chi2_pvalue", 0.05, 0.049, 0.05),
    ],
)
def test_explicit_methods_use_their_statistic_and_default_threshold(
    method: str, statistic: str, threshold: float, drifted: float, kept: float
) -> None:
    categorical = method == "chi2"
    rule = drift.resolve_rule(method, None, categorical, 50_000)
    assert (rule.statistic, rule.threshold) == (statistic, threshold)
    assert rule.drifted(drifted)
    assert not rule.drifted(kept)
    assert drift.resolve_rule(method, 0.3, categorical, 50_000).threshold == 0.3


@pytest.mark.parametrize(
    ("categorical", "rows", "statistic", "threshold"),
    [
        (False, 1000, "ks_pvalue", 0.05),
        (False, 1001, "wasserstein", 0.1),
        (True, 1000, "chi2_pvalue", 0.05),
        (True, 1001, "jensen_shannon", 0.1),
    ],
)
def test_auto_method_by_kind_and_reference_size(
    categorical: bool, rows: int, statistic: str, threshold: float
) -> None:
    rule = drift.resolve_rule("auto", None, categorical, rows)
    assert (rule.statistic, rule.threshold) == (statistic, threshold)


def rules_for(profile_path: Any, **drift_config: Any) -> dict[tuple[str, str], drift.Rule]:
    from modelmon.model import ModelMonitor
    from modelmon.profile import load_profile

    raw = {"models": [{"name": "m", "reference": str(profile_path), "drift": drift_config}]}
    config = config_from_dict(raw)
    monitor = ModelMonitor(config.models[0], load_profile(profile_path))
    rules, _ = resolve_rules(config.models[0], monitor.profile, monitor.layout)
    return rules


def test_auto_tests_numeric_columns_with_few_values_as_categories(make_profile: Any) -> None:
    rng = np.random.default_rng(1)
    rows = [
        {"few": int(rng.integers(0, 5)), "many": float(rng.normal()), "cat": str(rng.integers(3))}
        for _ in range(300)
    ]
    rules = rules_for(make_profile(rows, "small").path)
    assert rules[("feature", "few")].statistic == "chi2_pvalue"  # 5 distinct values
    assert rules[("feature", "many")].statistic == "ks_pvalue"
    assert rules[("feature", "cat")].statistic == "chi2_pvalue"


def test_auto_switches_to_distances_above_1000_reference_rows(make_profile: Any) -> None:
    rng = np.random.default_rng(2)
    rows = [{"x": float(rng.normal()), "cat": str(rng.integers(3))} for _ in range(1001)]
    rules = rules_for(make_profile(rows, "large").path)
    assert rules[("feature", "x")].statistic == "wasserstein"
    assert rules[("feature", "cat")].statistic == "jensen_shannon"


def test_auto_counts_reference_rows_not_the_columns_present_values(make_profile: Any) -> None:
    """DESIGN.md section 6: the choice depends on the reference's rows."""
    rng = np.random.default_rng(4)
    rows = [
        {"x": "" if i % 3 == 0 else float(rng.normal()), "y": float(rng.normal())}
        for i in range(1200)
    ]
    rules = rules_for(make_profile(rows, "gappy").path)
    assert rules[("feature", "y")].statistic == "wasserstein"
    assert rules[("feature", "x")].statistic == "wasserstein"  # 800 values, 1200 rows


def test_column_overrides_take_method_and_threshold(make_profile: Any) -> None:
    rng = np.random.default_rng(5)
    rows = [{"x": float(rng.normal()), "y": float(rng.normal())} for _ in range(300)]
    path = make_profile(rows, "override").path
    rules = rules_for(
        path, method="psi", columns={"y": {"method": "wasserstein", "threshold": 0.3}}
    )
    assert rules[("feature", "x")] == drift.Rule("psi", 0.2, below=False)
    assert rules[("feature", "y")] == drift.Rule("wasserstein", 0.3, below=False)


@pytest.mark.parametrize(("n", "m"), [(2000, 3000), (20_000, 5_000)])
def test_ks_pvalue_of_large_samples_is_within_0_01_of_scipy(n: int, m: int) -> None:
    """Above an effective size of 1000 the limiting distribution is used (fast); it stays
    within 0.01 of ks_2samp's asymptotic p-value on the same data."""
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(loc=0.03, size=m)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert drift.ks_pvalue(expected.statistic, n, m) == pytest.approx(expected.pvalue, abs=0.01)
