"""The Drift dashboard: per-column drift statistics, bin shares and distributions."""

from __future__ import annotations

from .dashboard import (
    MV,
    MVC,
    MVCW,
    MVW,
    column_variable,
    dashboard,
    model_variable,
    version_variable,
    window_variable,
)
from .panels import (
    JSON,
    RED,
    STATE_MAPPINGS,
    YELLOW,
    barchart,
    heatmap,
    repeated,
    row,
    stat,
    state_timeline,
    target,
    thresholds,
    timeseries,
)

LEGEND = "{{column}} {{version}} ({{window}})"

# Reference lines drawn on the statistics: the methods' default thresholds (DESIGN.md §6).
PSI_STEPS = thresholds((0.1, YELLOW), (0.2, RED))
DISTANCE_STEPS = thresholds((0.1, RED))  # jensen_shannon and wasserstein default 0.1
PVALUE_STEPS = thresholds((0.05, "green"), base=RED)  # p < 0.05 flags drift


def summary() -> list[JSON]:
    """Dataset drift share now and over time, and the number of drifted columns."""
    return [
        row("Summary"),
        stat(
            "Dataset drift share",
            [
                target(
                    f"max by (model, version) (modelmon_dataset_drift_share{{{MVW}}})",
                    "{{model}} {{version}}",
                )
            ],
            description="Share of features that drifted in the window.",
            unit="percentunit",
            steps=thresholds((0.25, YELLOW), (0.5, RED)),
            size=(6, 8),
        ),
        stat(
            "Drifted columns",
            [
                target(
                    f"sum by (model, version) (modelmon_drift_detected{{{MVCW}}})",
                    "{{model}} {{version}}",
                )
            ],
            description="Number of the selected columns whose drift is detected now.",
            steps=thresholds((1, RED)),
            size=(6, 8),
        ),
        state_timeline(
            "Dataset drift detected",
            [
                target(
                    f"max by (model, version) (modelmon_dataset_drift_detected{{{MVW}}})",
                    "{{model}} {{version}}",
                )
            ],
            description="Dataset drift: the drifted share of features reached drift.share.",
            mappings=STATE_MAPPINGS,
            steps=thresholds((1, RED)),
            size=(12, 8),
        ),
        timeseries(
            "Dataset drift share over time",
            [
                target(
                    f"modelmon_dataset_drift_share{{{MVW}}}", "{{model}} {{version}} ({{window}})"
                )
            ],
            description="Share of features that drifted, per version and window; dataset "
            "drift is declared at drift.share (default 0.5).",
            unit="percentunit",
            maximum=1,
            steps=thresholds((0.5, RED)),
            size=(24, 8),
        ),
    ]


def verdicts() -> list[JSON]:
    """Each column's statistic against the effective threshold its verdict used."""
    legend = "{{version}} ({{window}})"
    against = timeseries(
        "$column: statistic against its effective threshold",
        [
            target(f"modelmon_drift_wasserstein{{{MVCW}}}", "wasserstein " + legend),
            target(f"modelmon_drift_jensen_shannon{{{MVCW}}}", "jensen_shannon " + legend),
            target(f"modelmon_drift_psi{{{MVCW}}}", "psi " + legend),
            target(f"modelmon_drift_threshold{{{MVCW}}}", "effective threshold " + legend),
        ],
        description="The effective threshold is max(effect threshold, noise floor at the "
        "window's size), in the units of the column's method: wasserstein for numeric and "
        "jensen_shannon for categorical columns under `auto` with references over 1000 "
        "rows, or the configured method. Drift is declared when the method's statistic "
        "reaches it. Under p-value methods (ks, chi2) the threshold is the corrected alpha: "
        "compare it with the p-value panel. See docs/drift.md.",
        minimum=0,
    )
    return [
        row("Verdicts"),
        repeated(against, "column"),
        timeseries(
            "p-value of each column's verdict",
            [target(f"modelmon_drift_pvalue{{{MVCW}}}", LEGEND)],
            description="Probability of a statistic at least this large without drift, at "
            "the window's size (two-sample null simulated from the reference). Drift needs "
            "it below the Holm-corrected alpha (drift.alpha, default 0.01, shared by the "
            "version's columns) and, for distances, the statistic above its effect "
            "threshold.",
            unit="none",
            log_scale=True,
            size=(24, 8),
        ),
    ]


def statistics() -> list[JSON]:
    """PSI, Jensen-Shannon, KS, Wasserstein and p-values per column over time."""

    def graph(name: str, title: str, description: str, steps: JSON, unit: str = "none") -> JSON:
        return timeseries(
            title,
            [target(f"modelmon_drift_{name}{{{MVCW}}}", LEGEND)],
            description=description,
            unit=unit,
            minimum=0,
            steps=steps,
        )

    return [
        row("Drift statistics over time"),
        graph(
            "psi",
            "Population stability index (PSI)",
            "Sum over coarse bins of (c - r) ln(c / r); shares floored at 1e-4. Lines: "
            "0.1 moderate, 0.2 significant.",
            PSI_STEPS,
        ),
        graph(
            "jensen_shannon",
            "Jensen-Shannon distance",
            "Jensen-Shannon distance (base 2, 0-1) over coarse bins or categories. Line: "
            "0.1, the default threshold.",
            DISTANCE_STEPS,
        ),
        graph(
            "ks",
            "Kolmogorov-Smirnov statistic",
            "Max difference of cumulative shares over fine bin edges (numeric columns).",
            thresholds(),
        ),
        graph(
            "wasserstein",
            "Wasserstein distance (reference std units)",
            "Wasserstein-1 distance divided by the reference standard deviation "
            "(numeric columns). Line: 0.1, the default threshold.",
            DISTANCE_STEPS,
        ),
        timeseries(
            "p-values (KS and chi-square)",
            [
                target(f"modelmon_drift_ks_pvalue{{{MVCW}}}", "KS " + LEGEND),
                target(f"modelmon_drift_chi2_pvalue{{{MVCW}}}", "chi2 " + LEGEND),
            ],
            description="Context, not signal: at monitoring sample sizes p-values are "
            "close to 0. They decide drift only for references of at most 1000 rows.",
            unit="none",
            steps=PVALUE_STEPS,
            log_scale=True,
        ),
        timeseries(
            "Fleet-wide PSI over the last hour (all replicas)",
            [
                target(
                    f"model_version_column:modelmon_psi:increase1h{{{MVC}}}",
                    "{{column}} {{version}}",
                )
            ],
            description="PSI of the last hour's bin counts of every replica against the "
            "reference, computed by the recording rules of prometheus/rules from the "
            "additive counters: one number per model version however many replicas run.",
            unit="none",
            minimum=0,
            steps=PSI_STEPS,
        ),
        state_timeline(
            "Drift detected",
            [
                target(
                    f"max by (column, version) (modelmon_drift_detected{{{MVCW}}})",
                    "{{column}} {{version}}",
                )
            ],
            description="Drift detected: each column's statistic reached both its effect "
            "threshold and its noise floor (Holm-corrected over the version's columns).",
            mappings=STATE_MAPPINGS,
            steps=thresholds((1, RED)),
        ),
    ]


def bin_shares() -> JSON:
    """Current (time range) against reference share of each bin, one chart per column."""
    current = (
        f"sum by (role, column, bin) (increase(modelmon_column_bin_total{{{MVC}}}[$__range]))"
        f" / ignoring (bin) group_left sum by (role, column) "
        f"(increase(modelmon_column_bin_total{{{MVC}}}[$__range]))"
    )
    reference = f"avg by (role, column, bin) (modelmon_reference_bin_ratio{{{MVC}}})"
    return repeated(
        barchart(
            "$column: current vs reference bin shares",
            [
                target(current, instant=True, table=True),
                target(reference, instant=True, table=True),
            ],
            description="Share of the column's values in each reference bin over the time "
            "range (current, from the additive bin counters of every replica) against the "
            "reference share. Numeric bins are the coarse reference quantile bins 0..B-1; "
            "categorical bins are categories and __other__.",
            x_field="bin",
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "role": True, "column": True},
                        "renameByName": {"Value #A": "current", "Value #B": "reference"},
                    },
                },
                {"id": "sortBy", "options": {"sort": [{"field": "bin"}]}},
            ],
        ),
        "column",
    )


def distribution_heatmap() -> JSON:
    """The share of each bin over time as a heatmap, one per column."""
    expr = (
        f"sum by (bin) (increase(modelmon_column_bin_total{{{MVC}}}[$__rate_interval]))"
        f" / ignoring (bin) group_left sum (increase(modelmon_column_bin_total{{{MVC}}}"
        "[$__rate_interval]))"
    )
    return repeated(
        heatmap(
            "$column: distribution over time",
            [target(expr, "{{bin}}")],
            description="Share of the column's values in each reference bin per interval: a "
            "band that changes colour is a distribution that moves.",
            unit="short",
        ),
        "column",
    )


def data_quality() -> list[JSON]:
    """Missing, out-of-range and unseen shares and type errors per column."""

    def share(series: str, title: str, description: str) -> JSON:
        expr = (
            f"sum by (model, version, column) (rate({series}{{{MVC}}}[$__rate_interval]))"
            f" / on (model, version) group_left sum by (model, version) "
            f"(rate(modelmon_events_total{{{MV}}}[$__rate_interval]))"
        )
        return timeseries(
            title,
            [target(expr, "{{column}} {{version}}")],
            description=description,
            unit="percentunit",
            minimum=0,
        )

    return [
        row("Data quality by column"),
        share(
            "modelmon_column_missing_total",
            "Missing share",
            "Share of records with the column absent, null or NaN.",
        ),
        share(
            "modelmon_column_out_of_range_total",
            "Out-of-range share",
            "Share of records with a numeric value outside the reference [min, max].",
        ),
        share(
            "modelmon_column_unseen_total",
            "Unseen category share",
            "Share of records with a category never seen in the reference.",
        ),
        share(
            "modelmon_column_type_errors_total",
            "Type error share",
            "Share of records with a value of the wrong type for the column.",
        ),
    ]


def build() -> JSON:
    """The modelmon-drift dashboard."""
    return dashboard(
        "modelmon-drift",
        "modelmon / Drift",
        "Data and prediction drift per column against the reference profile.",
        [model_variable(), version_variable(), window_variable(), column_variable()],
        [
            *summary(),
            *verdicts(),
            *statistics(),
            row("Distributions"),
            bin_shares(),
            distribution_heatmap(),
            *data_quality(),
        ],
    )
