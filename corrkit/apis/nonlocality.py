"""The nonlocality analysis of a trained matcher: Φ per layer, the two figures, a JSON report."""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any, Sequence

from mmengine.registry import DefaultScope

from ..analysis.nonlocality import (PairNonlocality, conv_nonlocality, dataset_nonlocality,
                                    uniform_nonlocality)
from ..registry import DATASETS
from .inference import init_matcher, resolve_checkpoint
from .runtime import default_work_dir


def kernel_nonlocality(dims: Sequence[int] = (4, 6),
                       kernels: Sequence[int] = (3, 5, 7, 9, 11)) -> dict[str, float]:
    """Φ of ``K^d`` convolutions for each ``d`` and ``K`` (the paper's Figure 6 set).

    Examples:
        >>> kernel_nonlocality((4,), (3, 5))
        {'4D K=3': 2.6666666666666665, '4D K=5': 8.0}
    """
    return {f'{d}D K={k}': conv_nonlocality((k,) * d) for d in dims for k in kernels}


def nonlocality_report(config: str | os.PathLike, checkpoint: str | None = None,
                       out_dir: str | os.PathLike | None = None,
                       cfg_options: dict[str, Any] | None = None, split: str | None = None,
                       max_pairs: int | None = None, num_queries: int | None = 1024,
                       scores: str = 'paper', num_groups: int = 20,
                       conv_dims: Sequence[int] = (4, 6),
                       conv_kernels: Sequence[int] = (3, 5, 7, 9, 11), device: str = 'cpu',
                       seed: int = 0) -> dict:
    """Measure Φ (TransforMatcher Eq. 14) on a config's test pairs and draw Figures 6 and 7.

    Writes ``nonlocality.json`` (every pair's per-layer Φ and difficulty),
    ``nonlocality_hist.png`` (Fig. 6) and, when the pairs carry difficulty
    annotations, ``nonlocality_difficulty.png`` (Fig. 7) into ``out_dir``. The
    convolution panel holds the ``K^d`` kernels of ``conv_dims`` × ``conv_kernels``
    and, for a refiner with convolutions (``Refiner.convolution_kernels``, e.g. NC-Net),
    its learned kernels weighted by their magnitudes; such a model has no attention
    panel and no Figure 7.

    Args:
        config: Config path.
        checkpoint: Weights (a file or a training work dir); ``None`` analyses the
            model as the config builds it.
        out_dir: Where to write; default ``work_dirs/<config name>/nonlocality``.
        cfg_options: Dotted-key config overrides.
        split: Dataset split instead of the test loader's.
        max_pairs: Analyse only the first pairs.
        num_queries: Matches sampled per layer and pair (``None``: all of them).
        scores: ``'paper'`` or ``'relative'`` (see :mod:`corrkit.analysis.nonlocality`).
        num_groups: Figure 7's groups of increasing Φ.
        conv_dims: Dimensions of the reference convolutions.
        conv_kernels: Kernel sizes of the reference convolutions.
        device: Where the model runs.
        seed: Seed of the query sample.

    Returns:
        The report written to ``nonlocality.json``.
    """
    from ..visualization.nonlocality import (plot_difficulty_proportions,
                                             plot_nonlocality_histograms)
    checkpoint = str(resolve_checkpoint(checkpoint)) if checkpoint is not None else None
    model = init_matcher(config, checkpoint, device, cfg_options)
    cfg = model.cfg
    out = Path(out_dir) if out_dir is not None else Path(default_work_dir(config)) / 'nonlocality'
    out.mkdir(parents=True, exist_ok=True)

    conv = kernel_nonlocality(conv_dims, conv_kernels)
    learned = model.refiner.convolution_kernels()
    for i, weight in enumerate(learned, start=1):
        kernel_size = tuple(weight.shape[2:])
        conv[f'learned layer {i} {"x".join(map(str, kernel_size))}'] = \
            conv_nonlocality(kernel_size, weight)

    pairs: list[PairNonlocality] = []
    grid = None
    if model.refiner.attention_layers():
        spec = dict(cfg.test_dataloader.dataset)
        if split is not None:
            spec['split'] = split
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'corrkit')):
            dataset = DATASETS.build(spec)
        pairs = dataset_nonlocality(model, dataset, max_pairs, scores, num_queries, seed)
        grid = max(model.feature_sizes(*model.input_size), key=lambda hw: hw[0] * hw[1])
    elif not learned:
        raise ValueError(f'the refiner {type(model.refiner).__name__} has neither attention '
                         f'layers (Refiner.attention_layers) nor convolution kernels '
                         f'(Refiner.convolution_kernels) to analyse')
    uniform = uniform_nonlocality((*grid, *grid)) if grid is not None else float('nan')
    layers = max((len(p.layers) for p in pairs), default=0)
    report = dict(
        config=str(config), checkpoint=checkpoint, scores=scores, num_queries=num_queries,
        seed=seed, grid=[*grid, *grid] if grid is not None else None, uniform=uniform,
        conv=conv,
        layers=[dict(layer=i + 1, mean=statistics.fmean(p.layers[i] for p in pairs),
                     std=statistics.pstdev([p.layers[i] for p in pairs])) for i in range(layers)],
        pairs=[dict(pair_id=p.pair_id, layers=p.layers, total=p.total,
                    difficulty=p.difficulty) for p in pairs])
    plot_nonlocality_histograms(conv, pairs, uniform, out / 'nonlocality_hist.png')
    report['figures'] = [str(out / 'nonlocality_hist.png')]
    if any(p.difficulty for p in pairs):
        plot_difficulty_proportions(pairs, num_groups, out / 'nonlocality_difficulty.png')
        report['figures'].append(str(out / 'nonlocality_difficulty.png'))
    (out / 'nonlocality.json').write_text(json.dumps(report, indent=1))
    return report
