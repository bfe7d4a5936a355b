"""``mmrec bench``: per-device rate, latency and jitter, their accumulators and plots."""
