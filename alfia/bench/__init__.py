"""The speed benchmarks behind ``alfia bench`` (docs/speed.md).

quick       ALFIA's default training and inference paths against the authors' reference pipeline (the default
            ``--profile quick``; :mod:`alfia.bench.quick`, the reference in :mod:`alfia.bench.reference`)
paper       ALFIA in the paper's setting on a GPU (``--profile paper``; :mod:`alfia.bench.paper`)
measure     timers, peak memory, FLOPs, the GEMM throughput and the floor they give (:mod:`alfia.bench.measure`)
report      the summaries, the rounding of what is written, the markdown tables (:mod:`alfia.bench.report`)
"""
