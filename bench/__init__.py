"""Benchmark harnesses: each module with a `run(results_dir)` writes results/<name>.json."""
