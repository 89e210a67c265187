"""Benchmark matchers: parameters, GFLOPs, ms per pair, memory, stages, ratios to references.

Usage:
    python tools/benchmark.py CONFIG [CONFIG ...] [--out-dir work_dirs/benchmark]
        [--batch-sizes 1 8] [--no-train] [--sweep-grid] [--sweep-sides 10 15 20 25 30]
        [--device cpu|cuda] [--warmup 2] [--repeats 10] [--threads N]
        [--precision fp32|bf16|fp16] [--compile] [--sweep-resolutions 240 384 560 840]
        [--cfg-options KEY=VALUE ...] [--debug]

Models are built with random weights. Writes benchmark.md, benchmark.json and, with
--sweep-grid, refiner_scaling.png (the first config's refiner alone on side^4 grids);
with --sweep-resolutions, resolution_scaling.png (every config's whole forward, batch 1,
at each input side: peak memory and time). Keypoint matchers are timed stage by stage
as backbone, similarity, head (20 keypoints) and dense flow; a model with nothing to
train gets no training row. Calls are timed round-robin, and each ratio is the median of
its per-round ratios. Models are built with init_matcher, which on the CPU keeps freed
large blocks for reuse as every entry point does (CORRKIT_TUNE_MALLOC=0: a plain malloc).
"""
import sys

from corrkit.cli import benchmark

if __name__ == '__main__':
    sys.exit(benchmark.main())
