"""Pure numeric code: binning, sliding windows, drift and performance statistics.

Nothing here imports HTTP or Prometheus code.
"""
