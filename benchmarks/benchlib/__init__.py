"""Shared parts of the benchmarks: child processes that host each path, a raw HTTP/1.1 client
that timestamps reads, measurements, and statistics. Benchmarks import it as a sibling package
(``python benchmarks/bench_streams.py`` puts ``benchmarks/`` on ``sys.path``)."""
