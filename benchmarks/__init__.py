"""Benchmark scripts: run each from the repository root as a module
(`python -m benchmarks.bench_browser`); the last line each prints is JSON."""
