"""The nonlocality figures: Φ histograms (TransforMatcher Fig. 6) and difficulty shares (Fig. 7)."""
from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

from ..analysis.nonlocality import PairNonlocality, difficulty_groups, level_proportions
from ..structures import DIFFICULTY_FIELDS, DIFFICULTY_GRADES

# one colour per grade, in DIFFICULTY_GRADES' order (light to strong)
_COLOURS = dict(zip(DIFFICULTY_GRADES, ('#7fc97f', '#fdc086', '#e7298a')))


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')  # files only; no display needed
    import matplotlib.pyplot as plt
    return plt


def plot_nonlocality_histograms(conv: Mapping[str, float], pairs: Sequence[PairNonlocality],
                                uniform: float, path: str | os.PathLike, bins: int = 20) -> None:
    """Fig. 6: Φ of convolution kernels (left) and of attention layers over pairs (right).

    Args:
        conv: Φ per convolution, keyed by a label such as ``'4D K=5'``.
        pairs: Per-pair, per-layer Φ of the attention refiner.
        uniform: Φ of uniform attention over the grid, drawn as a reference line.
        path: PNG to write.
        bins: Histogram bins, shared by both panels (one x axis, 0 to the largest Φ).
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True,
                                      sharex=True)
    values = list(conv.values())
    num_layers = max((len(p.layers) for p in pairs), default=0)
    layer_values = [[p.layers[layer] for p in pairs if layer < len(p.layers)]
                    for layer in range(num_layers)]
    finite = [v for v in [*values, uniform, *sum(layer_values, [])] if not math.isnan(v)]
    edges = [i * 1.05 * max(finite, default=1.0) / bins for i in range(bins + 1)]
    left.hist(values, bins=edges, color='#386cb0')
    left.set(title='convolution kernels', xlabel='nonlocality Φ (cells²)', ylabel='kernels')
    for layer, layer_phi in enumerate(layer_values):
        right.hist(layer_phi, bins=edges, alpha=0.6, label=f'layer {layer + 1}')
    if not math.isnan(uniform):
        for axis in (left, right):
            axis.axvline(uniform, color='grey', linestyle='--', label='uniform over the grid')
    right.set(title=f'attention layers ({len(pairs)} pairs)', xlabel='nonlocality Φ (cells²)',
              ylabel='pairs')
    if layer_values:
        right.legend(fontsize='small', loc='upper left')
    else:
        right.text(0.5, 0.5, 'no attention layers', ha='center', transform=right.transAxes)
    for axis in (left, right):
        axis.yaxis.get_major_locator().set_params(integer=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_difficulty_proportions(pairs: Sequence[PairNonlocality], num_groups: int,
                                path: str | os.PathLike) -> None:
    """Fig. 7: share of easy / medium / hard pairs per group of increasing total Φ.

    One panel per difficulty annotation the pairs carry (viewpoint, scale,
    truncation, occlusion), graded by :func:`~corrkit.structures.difficulty_grade`.

    Raises:
        ValueError: If no pair carries a difficulty annotation.
    """
    fields = [f for f in DIFFICULTY_FIELDS if any(f in p.difficulty for p in pairs)]
    if not fields:
        raise ValueError('the pairs carry no difficulty annotation (SPair-71k and the mini '
                         'dataset do; PF-PASCAL and PF-WILLOW do not), so there is no Figure 7')
    groups = difficulty_groups(pairs, num_groups)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(fields), figsize=(3.2 * len(fields), 3.4),
                             constrained_layout=True, squeeze=False)
    x = range(1, len(groups) + 1)
    for axis, name in zip(axes[0], fields):
        shares = level_proportions(pairs, groups, name)
        bottom = [0.0] * len(groups)
        for level in DIFFICULTY_GRADES:
            heights = [s[level] for s in shares]
            axis.bar(x, heights, bottom=bottom, color=_COLOURS[level], label=level, width=0.9)
            bottom = [b + h for b, h in zip(bottom, heights)]
        axis.set(title=name.replace('_variation', ''), xlabel='group (increasing Φ)',
                 ylim=(0, 1))
    axes[0][0].set_ylabel('proportion of pairs')
    axes[0][-1].legend(fontsize='small', loc='upper left', bbox_to_anchor=(1.02, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
