"""The metric catalogue: every metric family modelmon exports, in one place.

The names, types and labels here are the public contract of DESIGN.md section 7.
Collectors take their HELP text from this table, the metric reference in
``docs/metrics.md`` is checked against it, and the bundle's contract test checks that
every metric a rule or a dashboard uses is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL = ("model", "version")
COLUMN = ("model", "version", "role", "column")
WINDOWED_COLUMN = ("model", "version", "role", "column", "window")
WINDOWED = ("model", "version", "window")
GPU = ("gpu", "gpu_uuid")
RUN = ("model", "run")
EVALUATION = ("model", "version", "dataset")


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: its exposition name, type, HELP text and label names."""

    name: str
    type: str  # counter | gauge | summary | histogram | info
    help: str
    labels: tuple[str, ...]

    @property
    def family(self) -> str:
        """The family name as prometheus_client wants it (counters without ``_total``)."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name

    def series_names(self) -> tuple[str, ...]:
        """Every sample name this family can put in an exposition."""
        if self.type == "summary":
            return (f"{self.name}_sum", f"{self.name}_count")
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


def _drift(stat: str, what: str) -> MetricSpec:
    return MetricSpec(f"modelmon_drift_{stat}", "gauge", what, WINDOWED_COLUMN)


CATALOGUE: tuple[MetricSpec, ...] = (
    # --- counters: additive over replicas and time -------------------------------------
    MetricSpec("modelmon_events_total", "counter", "Prediction records accepted (count).", MODEL),
    MetricSpec(
        "modelmon_rejected_records_total",
        "counter",
        "Records rejected as unusable, by reason (count).",
        ("model", "reason"),
    ),
    MetricSpec(
        "modelmon_column_bin_total",
        "counter",
        "Values per reference bin: coarse bin index for numeric columns, category "
        "(or __other__) for categorical ones (count).",
        (*COLUMN, "bin"),
    ),
    MetricSpec(
        "modelmon_column_missing_total",
        "counter",
        "Missing values (absent, null or NaN) per column (count).",
        COLUMN,
    ),
    MetricSpec(
        "modelmon_column_out_of_range_total",
        "counter",
        "Numeric values outside the reference [min, max], +/-inf included (count).",
        COLUMN,
    ),
    MetricSpec(
        "modelmon_column_unseen_total",
        "counter",
        "Categorical values never seen in the reference (count).",
        COLUMN,
    ),
    MetricSpec(
        "modelmon_column_type_errors_total",
        "counter",
        "Values of the wrong type for the column, e.g. text in a numeric column (count).",
        COLUMN,
    ),
    MetricSpec(
        "modelmon_unknown_fields_total",
        "counter",
        "Feature keys that are no column of the model's reference (count).",
        ("model",),
    ),
    MetricSpec(
        "modelmon_labels_total",
        "counter",
        "Ground-truth labels received and joined to a prediction (count).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_labeled_predictions_total",
        "counter",
        "Predictions with a ground-truth label (count).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_correct_predictions_total",
        "counter",
        "Labeled predictions equal to their label (count).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_confusion_total",
        "counter",
        "Confusion matrix cells: labeled predictions by actual and predicted class (count).",
        (*MODEL, "actual", "predicted"),
    ),
    MetricSpec(
        "modelmon_absolute_error",
        "summary",
        "Absolute error |label - prediction| of labeled regression predictions (label units).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_squared_error",
        "summary",
        "Squared error (label - prediction)^2 of labeled regression predictions "
        "(label units squared).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_label_delay_seconds",
        "histogram",
        "Delay from a prediction to its label (seconds).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_unmatched_labels_total",
        "counter",
        "Labels that found no prediction within their waiting time (count).",
        ("model",),
    ),
    MetricSpec(
        "modelmon_expired_predictions_total",
        "counter",
        "Predictions that got no label within labels.ttl, were evicted by "
        "labels.max_pending, or could not wait because the label store was unavailable "
        "(count).",
        ("model",),
    ),
    MetricSpec(
        "modelmon_prediction_latency_seconds",
        "histogram",
        "Model latency reported by prediction records (seconds).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_reference_bin_ratio",
        "gauge",
        "Reference share of each bin (ratio, 0-1); pairs with modelmon_column_bin_total.",
        (*COLUMN, "bin"),
    ),
    # --- computed over sliding windows ---------------------------------------------------
    _drift(
        "psi",
        "Population stability index of the window against the reference, over "
        "coarse bins, shares floored at 1e-4 (dimensionless).",
    ),
    _drift(
        "jensen_shannon",
        "Jensen-Shannon distance, base 2, of the window against the "
        "reference over coarse bins or categories (0-1).",
    ),
    _drift(
        "ks",
        "Kolmogorov-Smirnov statistic: max difference of cumulative shares over "
        "fine bin edges (0-1).",
    ),
    _drift("ks_pvalue", "Two-sample asymptotic p-value of the KS statistic (probability)."),
    _drift(
        "wasserstein",
        "Wasserstein-1 distance divided by max(reference std, 0.001) "
        "(reference standard deviations).",
    ),
    _drift(
        "chi2_pvalue",
        "Chi-square goodness-of-fit p-value of window category counts "
        "against reference shares (probability).",
    ),
    _drift(
        "detected",
        "1 when the column drifted: its statistic reached both the effect threshold and the "
        "noise floor at this window's size, Holm-corrected over the version's columns "
        "(p-value methods: p-value below the corrected alpha), else 0. Absent below 30 values.",
    ),
    _drift(
        "threshold",
        "Effective threshold of the column's verdict, in the units of its method's statistic: "
        "max(effect threshold, noise floor at this window's size and corrected alpha); for "
        "p-value methods the corrected alpha (probability).",
    ),
    _drift(
        "pvalue",
        "Probability of a statistic at least this large without drift, at this window's "
        "number of values (two-sample null simulated from the reference; probability).",
    ),
    MetricSpec(
        "modelmon_dataset_drift_share",
        "gauge",
        "Share of features that drifted in the window (ratio, 0-1).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_dataset_drift_detected",
        "gauge",
        "1 when the drifted share of features reaches drift.share, else 0.",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_window_events",
        "gauge",
        "Prediction records in the sliding window (count).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_accuracy",
        "gauge",
        "Accuracy of labeled predictions in the window, by label arrival (ratio).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_precision",
        "gauge",
        "Precision per class in the window (ratio).",
        (*WINDOWED, "class"),
    ),
    MetricSpec(
        "modelmon_recall", "gauge", "Recall per class in the window (ratio).", (*WINDOWED, "class")
    ),
    MetricSpec(
        "modelmon_f1", "gauge", "F1 score per class in the window (ratio).", (*WINDOWED, "class")
    ),
    MetricSpec(
        "modelmon_roc_auc",
        "gauge",
        "ROC AUC of binary scores in the window, from binned scores (ratio).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_log_loss", "gauge", "Mean log loss of scores in the window (nats).", WINDOWED
    ),
    MetricSpec(
        "modelmon_brier_score",
        "gauge",
        "Brier score of scores in the window (mean squared probability error).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_mae", "gauge", "Mean absolute error in the window (label units).", WINDOWED
    ),
    MetricSpec(
        "modelmon_rmse", "gauge", "Root mean squared error in the window (label units).", WINDOWED
    ),
    MetricSpec(
        "modelmon_mape",
        "gauge",
        "Mean absolute percentage error in the window (ratio, 0.1 = 10%).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_estimated_accuracy",
        "gauge",
        "Accuracy estimated from calibrated scores before labels arrive, by "
        "prediction time (ratio).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_estimated_roc_auc",
        "gauge",
        "ROC AUC estimated from calibrated scores before labels arrive (ratio).",
        WINDOWED,
    ),
    MetricSpec(
        "modelmon_reference_accuracy", "gauge", "Accuracy on the reference data (ratio).", MODEL
    ),
    MetricSpec(
        "modelmon_reference_roc_auc", "gauge", "ROC AUC on the reference data (ratio).", MODEL
    ),
    MetricSpec(
        "modelmon_reference_log_loss", "gauge", "Log loss on the reference data (nats).", MODEL
    ),
    MetricSpec(
        "modelmon_reference_brier_score", "gauge", "Brier score on the reference data.", MODEL
    ),
    MetricSpec(
        "modelmon_reference_mae",
        "gauge",
        "Mean absolute error on the reference data (label units).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_reference_rmse",
        "gauge",
        "Root mean squared error on the reference data (label units).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_reference_mape",
        "gauge",
        "Mean absolute percentage error on the reference data (ratio).",
        MODEL,
    ),
    MetricSpec(
        "modelmon_pending_predictions",
        "gauge",
        "Predictions waiting for their label (count).",
        ("model",),
    ),
    # --- resources -------------------------------------------------------------------------
    MetricSpec(
        "modelmon_model_process_cpu_seconds_total",
        "counter",
        "CPU time of the model process and its children, user plus system (seconds).",
        (),
    ),
    MetricSpec(
        "modelmon_model_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the model process and its children (bytes).",
        (),
    ),
    MetricSpec(
        "modelmon_model_process_threads",
        "gauge",
        "Threads of the model process and its children (count).",
        (),
    ),
    MetricSpec(
        "modelmon_model_process_open_fds",
        "gauge",
        "Open file descriptors of the model process and its children (count).",
        (),
    ),
    MetricSpec(
        "modelmon_gpu_utilization_ratio",
        "gauge",
        "GPU busy share over the last sample period (ratio, 0-1).",
        GPU,
    ),
    MetricSpec("modelmon_gpu_memory_used_bytes", "gauge", "GPU memory in use (bytes).", GPU),
    MetricSpec("modelmon_gpu_memory_total_bytes", "gauge", "GPU memory in all (bytes).", GPU),
    MetricSpec(
        "modelmon_gpu_memory_reserved_bytes",
        "gauge",
        "GPU memory the driver reserves for itself, not counted in used (bytes); "
        "drivers with the NVML version 2 memory query only.",
        GPU,
    ),
    MetricSpec(
        "modelmon_gpu_temperature_celsius", "gauge", "GPU core temperature (degrees Celsius).", GPU
    ),
    MetricSpec("modelmon_gpu_power_watts", "gauge", "GPU power draw (watts).", GPU),
    MetricSpec(
        "modelmon_gpu_energy_joules_total",
        "counter",
        "GPU energy consumed since the driver loaded (joules).",
        GPU,
    ),
    MetricSpec(
        "modelmon_gpu_process_memory_used_bytes",
        "gauge",
        "GPU memory used by a process of the model (bytes).",
        (*GPU, "pid"),
    ),
    MetricSpec(
        "modelmon_gpu_info",
        "gauge",
        "GPU identity; value always 1.",
        (*GPU, "name", "driver_version"),
    ),
    # --- exporter health -------------------------------------------------------------------
    MetricSpec(
        "modelmon_collector_success",
        "gauge",
        "1 when the collector's last run succeeded, else 0.",
        ("collector",),
    ),
    MetricSpec(
        "modelmon_collector_duration_seconds",
        "gauge",
        "Duration of the collector's last run (seconds).",
        ("collector",),
    ),
    MetricSpec("modelmon_build_info", "gauge", "modelmon build; value always 1.", ("version",)),
    MetricSpec(
        "modelmon_http_requests_total",
        "counter",
        "HTTP responses sent, by handler and status code (count); 429: ingest turned away "
        "(queue or byte budget full), 503: connection refused at limits.max_connections "
        "or shutting down.",
        ("handler", "code"),
    ),
    MetricSpec(
        "modelmon_model_info",
        "gauge",
        "A served model version; value always 1.",
        ("model", "version", "task", "reference"),
    ),
    # --- training runs (modelmon.TrainingRun: pushed or served by the training job) -------
    MetricSpec(
        "modelmon_training_run_info",
        "gauge",
        "A training run: model version it trains and a digest of its parameters; value always 1.",
        (*RUN, "version", "params_digest"),
    ),
    MetricSpec(
        "modelmon_training_status",
        "gauge",
        "1 for the run's current status (running, succeeded or failed), 0 for the others.",
        (*RUN, "status"),
    ),
    MetricSpec(
        "modelmon_training_start_time_seconds",
        "gauge",
        "Unix time when the run started (seconds).",
        RUN,
    ),
    MetricSpec(
        "modelmon_training_end_time_seconds",
        "gauge",
        "Unix time when the run ended, succeeded or failed (seconds); absent while running.",
        RUN,
    ),
    MetricSpec(
        "modelmon_training_heartbeat_timestamp_seconds",
        "gauge",
        "Unix time of the run's last push or scrape (seconds): a killed job stops it.",
        RUN,
    ),
    MetricSpec("modelmon_training_step", "gauge", "Last logged training step (count).", RUN),
    MetricSpec("modelmon_training_epoch", "gauge", "Last logged epoch (count).", RUN),
    MetricSpec(
        "modelmon_training_loss",
        "gauge",
        "Last logged loss of the split (the loss function's units; NaN when not finite).",
        (*RUN, "split"),
    ),
    MetricSpec(
        "modelmon_training_nonfinite_loss_total",
        "counter",
        "Logged losses that were NaN or infinite (count).",
        (*RUN, "split"),
    ),
    MetricSpec(
        "modelmon_training_metric",
        "gauge",
        "Last logged value of a metric of the split (the metric's units).",
        (*RUN, "split", "metric"),
    ),
    MetricSpec("modelmon_training_learning_rate", "gauge", "Last logged learning rate.", RUN),
    MetricSpec(
        "modelmon_training_samples_total",
        "counter",
        "Training samples processed (count); rate() is the throughput.",
        RUN,
    ),
    MetricSpec(
        "modelmon_training_confusion_matrix",
        "gauge",
        "Confusion matrix of the split at the last logged evaluation: examples by actual "
        "and predicted class (count).",
        (*RUN, "split", "actual", "predicted"),
    ),
    MetricSpec(
        "modelmon_training_push_failures_total",
        "counter",
        "Pushes to the Pushgateway that failed (count); training goes on.",
        RUN,
    ),
    # --- evaluations (modelmon evaluate --push-gateway) ------------------------------------
    MetricSpec(
        "modelmon_evaluation_metric",
        "gauge",
        "A metric of the candidate on the evaluation data set (the metric's units).",
        (*EVALUATION, "metric"),
    ),
    MetricSpec(
        "modelmon_evaluation_metric_lower",
        "gauge",
        "Lower bound of the metric's confidence interval (the metric's units).",
        (*EVALUATION, "metric"),
    ),
    MetricSpec(
        "modelmon_evaluation_metric_upper",
        "gauge",
        "Upper bound of the metric's confidence interval (the metric's units).",
        (*EVALUATION, "metric"),
    ),
    MetricSpec(
        "modelmon_evaluation_difference",
        "gauge",
        "Candidate's metric minus the serving model's on the same rows (the metric's units).",
        (*EVALUATION, "metric", "baseline"),
    ),
    MetricSpec(
        "modelmon_evaluation_difference_pvalue",
        "gauge",
        "Two-sided p-value of the paired test of the difference (probability).",
        (*EVALUATION, "metric", "baseline"),
    ),
    MetricSpec(
        "modelmon_evaluation_segment_metric",
        "gauge",
        "A metric of the candidate on one segment of the data set (the metric's units).",
        (*EVALUATION, "metric", "segment", "segment_value"),
    ),
    MetricSpec(
        "modelmon_evaluation_confusion_matrix",
        "gauge",
        "Confusion matrix of the candidate on the data set: rows by actual and predicted "
        "class (count).",
        (*EVALUATION, "actual", "predicted"),
    ),
    MetricSpec(
        "modelmon_evaluation_rows",
        "gauge",
        "Labelled rows the candidate was evaluated on (count).",
        EVALUATION,
    ),
    MetricSpec(
        "modelmon_evaluation_passed",
        "gauge",
        "1 when the candidate passed the evaluation's gates, else 0.",
        EVALUATION,
    ),
    MetricSpec(
        "modelmon_evaluation_timestamp_seconds",
        "gauge",
        "Unix time when the evaluation finished (seconds).",
        EVALUATION,
    ),
)

BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}

#: Families that only ``modelmon check --push-gateway`` pushes (never on /metrics); the
#: check pushes its drift and performance gauges under their catalogue names too.
CHECK_CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "modelmon_check_passed",
        "gauge",
        "1 when every gate of the last modelmon check passed, else 0.",
        MODEL,
    ),
    MetricSpec(
        "modelmon_check_timestamp_seconds",
        "gauge",
        "Unix time when the last modelmon check finished (seconds).",
        MODEL,
    ),
)


def spec(name: str) -> MetricSpec:
    """The catalogue entry of ``name`` (exposition name, counters with ``_total``)."""
    return BY_NAME[name]


def exposed_series_names() -> frozenset[str]:
    """Every sample name modelmon can expose (``_sum``, ``_count``, ``_bucket`` included)."""
    return frozenset(s for m in CATALOGUE for s in m.series_names())
