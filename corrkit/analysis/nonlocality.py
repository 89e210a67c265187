"""How far match-to-match attention looks: the nonlocality Φ of TransforMatcher (Eq. 14, §D).

For an attention layer with ``N_h`` heads over the matches ``X`` of a 4D grid,

    Φ = 1 / (N_h |X|) · Σ_h Σ_q Σ_k A^(h)_{q,k} ‖q − k‖²,

the mean squared 4D distance (in correlation cells) between a match and the
matches it attends to. Every attention row sums to one, so Φ lies between 0 (each
match attends to itself) and the grid's diameter squared; attending uniformly to
the whole grid gives :func:`uniform_nonlocality`. A convolution with kernel
``K^d`` is an attention whose ``K^d`` heads each look at one fixed offset
(Cordonnier et al., 2020), so its Φ is the mean of ``‖Δ‖²`` over the kernel's
offsets: ``d (K² − 1) / 12`` (:func:`conv_nonlocality`).

Additive attention has no pairwise scores. As the supplementary (§D) does, a
pairwise map is built from its queries, keys and query weights ``α`` (Eq. 5):
``A = softmax_k(Q̂ K^T)`` with ``Q̂_q = α_q Q_q`` (``scores='paper'``). Because
``α`` sums to one over ``T`` matches, ``Q̂`` is about ``1/T`` of ``Q``; at
``T = 15⁴`` the scores all but vanish and ``A`` is close to uniform whatever the
weights. ``scores='relative'`` rescales ``α`` by ``T`` (so that a uniform ``α``
leaves the queries unchanged) and applies softmax attention's ``1/sqrt(D_h)``.
Softmax, Performer and other :class:`~corrkit.layers.QKVAttention` layers use
``softmax(Q K^T / sqrt(D_h))`` either way.

The analysis reads only what the contracts declare: a refiner's attentions come
from :meth:`Refiner.attention_layers <corrkit.models.base.Refiner.attention_layers>`
and each attention's map from
:meth:`Attention.pairwise_queries_keys <corrkit.layers.Attention.pairwise_queries_keys>`,
so a plugin refiner or attention that implements them is analysed like the
built-in ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
from torch import Tensor, nn

from ..layers import PAIRWISE_SCORES, Attention
from ..structures import DIFFICULTY_FIELDS, DIFFICULTY_GRADES, difficulty_grade

SCORES = PAIRWISE_SCORES


def grid_coordinates(grid: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
    """Integer 4D (or any-D) positions of the flattened grid, ``(T, len(grid))``, row-major.

    Examples:
        >>> grid_coordinates((2, 3))[:4].tolist()
        [[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [1.0, 0.0]]
    """
    axes = [torch.arange(n, dtype=dtype) for n in grid]
    return torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1).reshape(-1, len(grid))


def uniform_nonlocality(grid: Sequence[int]) -> float:
    """Φ of attention spread uniformly over the grid: ``Σ_axes (n² − 1) / 6``.

    Examples:
        >>> round(uniform_nonlocality((15, 15, 15, 15)), 2)
        149.33
    """
    return float(sum((n * n - 1) / 6 for n in grid))


def conv_nonlocality(kernel_size: Sequence[int], weight: Tensor | None = None) -> float:
    """Φ of a convolution as an attention with one head per kernel offset.

    Args:
        kernel_size: Kernel extent per axis (odd).
        weight: Optional learned kernel ``(C_out, C_in, *kernel_size)``; its absolute
            values, summed over channels and normalised, weigh the offsets. Without
            it every offset counts once (the construction of Cordonnier et al.).

    Returns:
        The mean squared offset, in grid cells.

    Raises:
        ValueError: If ``weight`` does not end in ``kernel_size`` or is all zero.

    Examples:
        >>> conv_nonlocality((3, 3, 3, 3)), conv_nonlocality((5,) * 4)
        (2.6666666666666665, 8.0)
    """
    offsets = grid_coordinates(kernel_size, torch.float64)
    offsets = offsets - torch.tensor([(k - 1) / 2 for k in kernel_size], dtype=torch.float64)
    sq = offsets.square().sum(-1)
    if weight is None:
        return float(sq.mean())
    if tuple(weight.shape[2:]) != tuple(kernel_size):
        raise ValueError(f'weight of shape {tuple(weight.shape)} does not end in the kernel '
                         f'size {tuple(kernel_size)}')
    mass = weight.detach().abs().double().sum((0, 1)).flatten()
    if mass.sum() == 0:
        raise ValueError('an all-zero kernel attends nowhere; its nonlocality is undefined')
    return float((mass * sq).sum() / mass.sum())


def pairwise_nonlocality(queries: Tensor, keys: Tensor, grid: Sequence[int],
                         num_queries: int | None = None, seed: int = 0,
                         chunk: int = 256) -> Tensor:
    """Φ per head of ``A = softmax_k(queries · keys^T)`` over a grid's matches.

    The ``T × T`` map is never held: queries go in chunks, and
    ``Σ_k A_qk ‖q − k‖² = ‖q‖² − 2 q · (A c) + A ‖c‖²`` needs only ``A`` times the
    coordinates ``c``.

    Args:
        queries: Scaled queries ``(B, heads, T, D)`` (scale included).
        keys: Keys ``(B, heads, T, D)``.
        grid: The 4D grid the ``T`` matches flatten (row-major).
        num_queries: Average over this many matches drawn at random (seeded, the
            same for every head and pair) instead of all ``T``: an unbiased estimate
            at a fraction of the cost.
        seed: Seed of the query sample.
        chunk: Queries per block of scores.

    Returns:
        ``(B, heads)`` nonlocality in squared grid cells.

    Examples:
        >>> q = torch.zeros(1, 2, 16, 4)  # zero scores: uniform attention
        >>> pairwise_nonlocality(q, torch.randn(1, 2, 16, 4), (2, 2, 2, 2))
        tensor([[2., 2.]])
    """
    b, h, t, _ = queries.shape
    if keys.shape[:3] != (b, h, t) or math.prod(grid) != t:
        raise ValueError(f'queries {tuple(queries.shape)} and keys {tuple(keys.shape)} do not '
                         f'match a grid of {math.prod(grid)} matches {tuple(grid)}')
    coords = grid_coordinates(grid, queries.dtype).to(queries.device)
    index = torch.arange(t, device=queries.device)
    if num_queries is not None and num_queries < t:
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(t, generator=generator)[:num_queries].to(queries.device)
    moments = torch.cat([coords, coords.square().sum(-1, keepdim=True)], dim=-1)  # (T, 5)
    total = queries.new_zeros(b, h)
    for part in index.split(chunk):
        attn = torch.softmax(queries[:, :, part] @ keys.mT, dim=-1)  # (B, h, c, T)
        mean_c, mean_sq = (attn @ moments).split([coords.shape[1], 1], dim=-1)
        q = coords[part]
        phi = q.square().sum(-1) - 2 * (mean_c * q).sum(-1) + mean_sq[..., 0]
        total += phi.sum(-1)
    return total / len(index)


def attention_queries_keys(attn: nn.Module, x: Tensor, grid: Sequence[int],
                           scores: str = 'paper') -> tuple[Tensor, Tensor]:
    """The scaled queries and keys whose softmax is the layer's pairwise attention.

    Asks the layer through
    :meth:`~corrkit.layers.Attention.pairwise_queries_keys`.

    Args:
        attn: A token mixer (a :class:`~corrkit.layers.Attention`).
        x: Its input ``(B, T, embed_dims)``.
        grid: The grid ``x`` flattens.
        scores: ``'paper'`` or ``'relative'`` (see the module documentation); only
            additive attention depends on it.

    Returns:
        Queries and keys, ``(B, heads, T, D_h)`` each.

    Raises:
        ValueError: On an unknown ``scores``, a module that is not an
            :class:`~corrkit.layers.Attention`, or an attention without pairwise
            scores between matches (its method returns ``None``: Linformer attends
            to projected summaries).
    """
    if scores not in SCORES:
        raise ValueError(f'scores must be one of {SCORES}, got {scores!r}')
    if not isinstance(attn, Attention):
        raise ValueError(f'{type(attn).__name__} is not a corrkit.layers.Attention; the '
                         f'nonlocality analysis reads the pairwise map through '
                         f'Attention.pairwise_queries_keys')
    pair = attn.pairwise_queries_keys(x, tuple(grid), scores)
    if pair is None:
        raise ValueError(f'{type(attn).__name__} has no pairwise attention between matches '
                         f'(its pairwise_queries_keys returns None), so its nonlocality is '
                         f'undefined')
    return pair


@dataclass
class PairNonlocality:
    """Φ of every attention layer for one pair, and the pair's annotations."""

    pair_id: str
    layers: list[float]
    difficulty: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Sample-wise nonlocality ``Σ_l Φ^l``."""
        return float(sum(self.layers))


def refiner_attentions(model: nn.Module) -> list[Attention]:
    """The token mixers of a matcher's refiner, in the order they run.

    They are what :meth:`~corrkit.models.base.Refiner.attention_layers` returns.

    Raises:
        ValueError: If the refiner exposes no attention layers.
    """
    attns = list(model.refiner.attention_layers())
    if not attns:
        raise ValueError(f'the refiner {type(model.refiner).__name__} exposes no attention '
                         f'layers (Refiner.attention_layers() is empty); for a convolutional '
                         f'refiner use conv_nonlocality on its kernels')
    return attns


@torch.no_grad()
def model_nonlocality(model: nn.Module, inputs: Tensor, scores: str = 'paper',
                      num_queries: int | None = 1024, seed: int = 0) -> Tensor:
    """Φ of every attention layer of a matcher for a batch of pairs.

    Args:
        model: A :class:`~corrkit.models.matchers.CorrelationMatcher` whose refiner
            exposes attention layers (:meth:`~corrkit.models.base.Refiner.attention_layers`,
            e.g. ``MatchToMatchRefiner``).
        inputs: Normalised image pairs ``(B, 2, 3, H, W)``.
        scores: How additive attention's pairwise map is built (module docs).
        num_queries: Matches sampled per layer (``None``: all).
        seed: Seed of the sample.

    Returns:
        ``(B, layers)``: Φ per layer, averaged over heads.
    """
    captured: list[tuple[nn.Module, Tensor, tuple]] = []
    hooks = [attn.register_forward_hook(lambda m, args, out: captured.append((m, *args[:2])))
             for attn in refiner_attentions(model)]
    try:
        model.dense_flow(*model.encode_pairs(inputs))
    finally:
        for hook in hooks:
            hook.remove()
    layers = []
    for attn, x, grid in captured:
        q, k = attention_queries_keys(attn, x, grid, scores)
        layers.append(pairwise_nonlocality(q, k, grid, num_queries, seed).mean(1))
    return torch.stack(layers, dim=1)


def difficulty_groups(pairs: Sequence[PairNonlocality], num_groups: int) -> list[list[int]]:
    """Indices of pairs sorted by total Φ and cut into ``num_groups`` near-equal groups.

    Examples:
        >>> pairs = [PairNonlocality(str(i), [v]) for i, v in enumerate([5.0, 1.0, 3.0, 2.0])]
        >>> difficulty_groups(pairs, 2)
        [[1, 3], [2, 0]]
    """
    if num_groups < 1:
        raise ValueError(f'num_groups must be positive, got {num_groups}')
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].total)
    bounds = [round(g * len(order) / num_groups) for g in range(num_groups + 1)]
    return [order[bounds[g]:bounds[g + 1]] for g in range(num_groups) if bounds[g + 1] > bounds[g]]


#: Figure 7's levels, :data:`~corrkit.structures.DIFFICULTY_GRADES`.
LEVEL_NAMES = DIFFICULTY_GRADES


def difficulty_level(field_name: str, value: int) -> str:
    """Figure 7's easy / medium / hard for one SPair difficulty annotation.

    The grading is :func:`corrkit.structures.difficulty_grade`'s.

    Raises:
        ValueError: If the field or value is not one SPair-71k defines.

    Examples:
        >>> difficulty_level('occlusion', 2), difficulty_level('scale_variation', 2)
        ('medium', 'hard')
    """
    return difficulty_grade(field_name, value)


def level_proportions(pairs: Sequence[PairNonlocality], groups: Iterable[Sequence[int]],
                      field_name: str) -> list[dict[str, float]]:
    """Per group, the share of pairs at each level of one difficulty annotation."""
    shares = []
    for group in groups:
        levels = [difficulty_level(field_name, pairs[i].difficulty[field_name]) for i in group
                  if field_name in pairs[i].difficulty]
        shares.append({name: (levels.count(name) / len(levels) if levels else 0.0)
                       for name in LEVEL_NAMES})
    return shares


def dataset_nonlocality(model: nn.Module, dataset: Sequence[dict], max_pairs: int | None = None,
                        scores: str = 'paper', num_queries: int | None = 1024,
                        seed: int = 0) -> list[PairNonlocality]:
    """Φ per layer for the pairs of a dataset, with their difficulty annotations.

    Args:
        model: A matcher with an attention refiner, in eval mode.
        dataset: An indexable dataset whose items are ``dict(inputs, data_samples)``
            (every corrkit dataset with its test pipeline).
        max_pairs: Analyse only the first pairs.
        scores: How additive attention's pairwise map is built (module docs).
        num_queries: Matches sampled per layer (``None``: all).
        seed: Seed of the sample.

    Returns:
        One :class:`PairNonlocality` per pair, in dataset order.
    """
    count = len(dataset) if max_pairs is None else min(max_pairs, len(dataset))
    device = next(model.parameters()).device
    results = []
    for index in range(count):
        item = dataset[index]
        data = model.data_preprocessor(dict(inputs=[item['inputs']],
                                            data_samples=[item['data_samples']]), False)
        phi = model_nonlocality(model, data['inputs'].to(device), scores, num_queries, seed)
        sample = item['data_samples']
        difficulty = {k: int(sample.get(k)) for k in DIFFICULTY_FIELDS
                      if sample.get(k) is not None}
        results.append(PairNonlocality(str(sample.get('pair_id', index)), phi[0].tolist(),
                                       difficulty))
    return results
