"""Reports of ``modelmon evaluate``: text for a terminal, Markdown for a pull-request
comment, JSON for programs. NaN (an interval with no defined resample) is written as
``n/a`` in text and Markdown and ``null`` in JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from modelmon.evaluation.compare import Candidate, EvaluationResult


def _num(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _nullable(value: float) -> float | None:
    return None if math.isnan(value) else value


def _cell(candidate: Candidate, metric: str) -> str:
    e = candidate.metrics[metric]
    return f"{_num(e.value)} [{_num(e.lower)}, {_num(e.upper)}]"


def _diff_cell(candidate: Candidate, metric: str) -> str:
    d = candidate.differences.get(metric)
    if d is None:
        return "serving"
    sign = "n/a" if math.isnan(d.difference) else f"{d.difference:+.4f}"
    return f"{sign} [{_num(d.lower)}, {_num(d.upper)}] p={d.pvalue:.3g}"


def _header(result: EvaluationResult) -> str:
    verdict = "PASS" if result.passed else "FAIL"
    s = result.settings
    return (
        f"modelmon evaluate: {verdict}: model {result.model}, data set {result.dataset}, "
        f"{result.rows:,} rows, task {result.task}; {s.confidence:.0%} percentile bootstrap "
        f"intervals ({s.resamples} resamples, seed {s.seed}); serving: {result.serving}"
    )


def _table(result: EvaluationResult) -> tuple[list[str], list[list[str]]]:
    head = ["candidate", *result.metrics]
    rows = []
    for c in result.candidates:
        rows.append([c.name, *(_cell(c, m) for m in result.metrics)])
        if c.name != result.serving:
            rows.append([f"  vs {result.serving}", *(_diff_cell(c, m) for m in result.metrics)])
    return head, rows


def _gate_lines(result: EvaluationResult) -> list[str]:
    return [
        f"{'PASS' if ok else 'FAIL'} {c.name}: {gate}: {why}"
        for c in result.candidates
        for gate, ok, why in c.gates
    ]


def render_text(result: EvaluationResult) -> str:
    head, rows = _table(result)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [_header(result), ""]
    for r in [head, *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    lines += ["", *_gate_lines(result), *_segment_lines(result)]
    return "\n".join(lines).rstrip() + "\n"


def _segment_lines(result: EvaluationResult) -> list[str]:
    lines = []
    for c in result.candidates:
        for column, values in c.segments.items():
            for value, entry in values.items():
                stats = ", ".join(f"{m} {_num(entry[m])}" for m in result.metrics)
                lines.append(
                    f"segment {column}={value} ({int(entry['rows'])} rows) {c.name}: {stats}"
                )
    return ["", *lines] if lines else []


def render_markdown(result: EvaluationResult) -> str:
    head, rows = _table(result)
    mark = ":white_check_mark:" if result.passed else ":x:"
    lines = [f"### {mark} {_header(result)}", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    gates = _gate_lines(result)
    if gates:
        lines += ["", "**Gates**", "", *(f"- {g}" for g in gates)]
    lines += [
        "",
        "Intervals: percentile bootstrap. Differences are candidate minus serving on the "
        "same rows; p: McNemar's exact test for accuracy, paired bootstrap otherwise.",
    ]
    return "\n".join(lines) + "\n"


def to_json(result: EvaluationResult) -> dict[str, Any]:
    s = result.settings
    return {
        "model": result.model,
        "dataset": result.dataset,
        "task": result.task,
        "rows": result.rows,
        "classes": result.classes,
        "positive_class": result.positive,
        "serving": result.serving,
        "passed": result.passed,
        "bootstrap": {
            "method": "percentile",
            "resamples": s.resamples,
            "seed": s.seed,
            "confidence": s.confidence,
        },
        "alpha": s.alpha,
        "candidates": [_candidate_json(c) for c in result.candidates],
    }


def _candidate_json(c: Candidate) -> dict[str, Any]:
    return {
        "name": c.name,
        "passed": c.passed,
        "metrics": {
            m: {
                "value": _nullable(e.value),
                "lower": _nullable(e.lower),
                "upper": _nullable(e.upper),
            }
            for m, e in c.metrics.items()
        },
        "differences": {
            m: {
                "difference": _nullable(d.difference),
                "lower": _nullable(d.lower),
                "upper": _nullable(d.upper),
                "pvalue": d.pvalue,
                "test": d.test,
            }
            for m, d in c.differences.items()
        },
        "confusion_matrix": c.confusion,
        "segments": {
            column: {
                value: {k: _nullable(v) for k, v in entry.items()}
                for value, entry in values.items()
            }
            for column, values in c.segments.items()
        },
        "gates": [{"gate": g, "passed": ok, "detail": why} for g, ok, why in c.gates],
    }


def render(result: EvaluationResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(result), indent=2, allow_nan=False) + "\n"
    if fmt == "markdown":
        return render_markdown(result)
    return render_text(result)
