"""Benchmarks (run as `python -m benchmarks.bench_metrics`)."""
