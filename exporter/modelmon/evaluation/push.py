"""Pushing an evaluation to a Pushgateway: one group per candidate.

Job ``modelmon_evaluation``, grouping key ``model``, ``version`` (the candidate's name)
and ``dataset`` (DESIGN.md section 11), so the latest evaluation of each candidate on
each data set stays side by side with the others and with the live exporter. NaN values
(an undefined interval) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.metrics_core import Metric

from modelmon.collectors import new_family
from modelmon.evaluation.compare import Candidate, EvaluationResult

JOB = "modelmon_evaluation"


class CandidateCollector:
    """The families of one candidate's evaluation."""

    def __init__(self, result: EvaluationResult, candidate: Candidate, timestamp: float) -> None:
        self.result, self.candidate, self.timestamp = result, candidate, timestamp

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        r, c = self.result, self.candidate
        base = [r.model, c.name, r.dataset]
        families: dict[str, Metric] = {}

        def add(name: str, labels: list[str], value: float) -> None:
            if math.isnan(value):
                return
            if name not in families:
                families[name] = new_family(name)
            families[name].add_metric(labels, value)  # type: ignore[attr-defined]

        for metric, e in c.metrics.items():
            add("modelmon_evaluation_metric", [*base, metric], e.value)
            add("modelmon_evaluation_metric_lower", [*base, metric], e.lower)
            add("modelmon_evaluation_metric_upper", [*base, metric], e.upper)
        for metric, d in c.differences.items():
            add("modelmon_evaluation_difference", [*base, metric, r.serving], d.difference)
            add("modelmon_evaluation_difference_pvalue", [*base, metric, r.serving], d.pvalue)
        for column, values in c.segments.items():
            for value, entry in values.items():
                for metric in r.metrics:
                    labels = [*base, metric, column, value]
                    add("modelmon_evaluation_segment_metric", labels, entry[metric])
        for i, row in enumerate(c.confusion or []):
            for j, count in enumerate(row):
                labels = [*base, r.classes[i], r.classes[j]]
                add("modelmon_evaluation_confusion_matrix", labels, float(count))
        add("modelmon_evaluation_rows", base, float(r.rows))
        add("modelmon_evaluation_passed", base, float(c.passed))
        add("modelmon_evaluation_timestamp_seconds", base, self.timestamp)
        yield from families.values()


def push(url: str, result: EvaluationResult, timestamp: float, *, timeout: float = 10.0) -> None:
    """Replace each candidate's group on the Pushgateway; OSError when it cannot."""
    for candidate in result.candidates:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(CandidateCollector(result, candidate, timestamp))
        push_to_gateway(
            url,
            job=JOB,
            registry=registry,
            grouping_key={
                "model": result.model,
                "version": candidate.name,
                "dataset": result.dataset,
            },
            timeout=timeout,
        )
