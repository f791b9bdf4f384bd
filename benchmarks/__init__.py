"""skae's benchmarks.

``python -m benchmarks run --profile quick|full`` runs the comparison suite
(:mod:`benchmarks.suite`); ``python -m benchmarks estimate --profile full``
predicts its run time on this machine. The standalone scripts
(``bench_speed.py``, ``bench_denoising.py``, ...) answer narrower questions;
each docstring says which.
"""
