"""Zero-code ingestion sources: records read from where the model already writes them.

Configured under ``sources:`` (DESIGN.md section 4); today one type, ``jsonl``.
"""

from modelmon.sources.jsonl import IngestOutcome, JsonlSource, RecordSink

__all__ = ["IngestOutcome", "JsonlSource", "RecordSink"]
