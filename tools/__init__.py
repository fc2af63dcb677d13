"""Scripts of the project: notebook refresh (`notebooks.py`) and the benchmarks (`make bench`).

Run the benchmarks from the repository root as modules, e.g. `python -m tools.bench_grpc`.
"""
