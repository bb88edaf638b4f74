"""modelmon: an ML model monitoring exporter for the Prometheus ecosystem."""

__version__ = "0.1.0"
