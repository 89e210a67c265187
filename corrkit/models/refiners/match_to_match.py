"""TransforMatcher's match-to-match attention refiner."""
from __future__ import annotations

from functools import partial

from einops import rearrange
from torch import Tensor, nn

from ...layers import AbsolutePosition4D, Attention, PreNormBlock, Rotary4D
from ...layers.blocked import auto_chunk, blocked_refine, supports_blocking
from ...layers.fused import can_fuse, fused_kernel, fused_refine, kernel_sizes
from ...layers.threads import auto_workers
from ...registry import ATTENTIONS, REFINERS
from ..base import Refiner


POSITIONS = ('rope', 'absolute', 'none')


@REFINERS.register_module()
class MatchToMatchRefiner(Refiner):
    """Global match-to-match attention over every entry of the 4D correlation.

    Each match ``(ys, xs, yt, xt)`` is a token whose features are its ``L``
    correlation scores. A linear embedding, ``depth`` pre-LN blocks of attention
    (additive by default, with 4D rotary position embedding on queries and keys)
    and a GELU MLP, a final LayerNorm and a linear read-out to one channel give
    the refined correlation. With additive attention the cost is linear in the
    number of matches.

    Args:
        in_channels: Correlation channels ``L`` (injected by the matcher).
        embed_dims: Token size after the embedding.
        depth: Number of attention blocks.
        num_heads: Attention heads per block.
        head_dims: Size of each head (``num_heads * head_dims`` must be even and
            at least 8 for the 4D rotary embedding).
        mlp_ratio: MLP hidden size relative to ``embed_dims``.
        rope_base: Base of the rotary frequency ladder.
        attention: Config of the token mixer in ``ATTENTIONS`` (``embed_dims``,
            ``num_heads``, ``head_dims`` and the rotary module are injected):
            ``AdditiveAttention`` (the paper's, linear in the number of matches)
            or ``SoftmaxAttention`` (vanilla, quadratic, for small grids).
        position: ``'rope'`` (4D rotary embedding of queries and keys in every
            block, the paper's), ``'absolute'`` (a learnable
            :class:`~corrkit.layers.AbsolutePosition4D` added to the embedded
            tokens) or ``'none'`` (Table 2's rows).
        max_grid: Largest grid extent for ``position='absolute'``.
        residual_mean: Add the mean of the input channels to the read-out, which
            starts at zero: the untrained refiner then equals
            :class:`~corrkit.models.refiners.MeanRefiner` (a zero-shot baseline)
            and training learns a correction to it. Useful for short CPU
            schedules; off in the paper's recipe.
        chunk: Tokens per chunk of the cache-blocked forward
            (:mod:`corrkit.layers.blocked`), used with additive attention and
            rotary or no positions: ``None`` chooses it from the batch size and
            the workers (about 8192 rows, in a multiple of ``workers`` equal
            chunks; :func:`~corrkit.layers.blocked.auto_chunk`), ``0``
            runs the straightforward forward (every operation over all tokens).
            Both give the same result up to rounding.
        workers: Most threads the chunks of the blocked forward are shared
            among, each running its chunks on one intra-op thread
            (:func:`corrkit.layers.threads.run_groups`); ``None`` means as many as
            PyTorch has intra-op threads. Never more than one per chunk, and one
            on GPUs or where the work must stay on the calling thread
            (:func:`corrkit.layers.threads.auto_workers`). ``1`` runs the chunks
            one after another, each kernel on all intra-op threads. The results
            agree up to rounding. Where gradients are needed the backward runs
            on the same threads; it gives first derivatives only (a second one,
            ``create_graph=True``, needs ``workers=1``).
        fused: Let the blocked forward run on the compiled CPU kernel
            (:mod:`corrkit.layers.fused`) where it applies: inference in
            float32 on the CPU with the default blocks. It is built with the
            system's C compiler at first use; without one the refiner warns
            once and runs its PyTorch kernels. ``False`` keeps the PyTorch
            kernels. The results agree up to rounding.

    Shape:
        - input: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, 1, Hs, Ws, Ht, Wt)``

    Examples:
        >>> refiner = MatchToMatchRefiner(in_channels=26)
        >>> sum(p.numel() for p in refiner.parameters())
        26977
        >>> refiner(torch.rand(1, 26, 3, 3, 4, 4)).shape
        torch.Size([1, 1, 3, 3, 4, 4])
    """

    def __init__(self, in_channels: int, embed_dims: int = 16, depth: int = 6,
                 num_heads: int = 8, head_dims: int = 4, mlp_ratio: float = 4.0,
                 rope_base: float = 100.0,
                 attention: dict = dict(type='AdditiveAttention'), position: str = 'rope',
                 max_grid: int = 32, residual_mean: bool = False, chunk: int | None = None,
                 workers: int | None = None, fused: bool = True):
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f'position must be one of {POSITIONS}, got {position!r}')
        self.in_channels = in_channels
        self.out_channels = 1
        self.position = position
        self.embed = nn.Linear(in_channels, embed_dims)
        self.blocks = nn.ModuleList(
            PreNormBlock(embed_dims,
                         ATTENTIONS.build(dict(attention, embed_dims=embed_dims,
                                               num_heads=num_heads, head_dims=head_dims,
                                               rope=(Rotary4D(num_heads * head_dims, rope_base)
                                                     if position == 'rope' else None))),
                         mlp_ratio)
            for _ in range(depth))
        self.absolute = (AbsolutePosition4D(embed_dims, max_grid) if position == 'absolute'
                         else None)
        self.norm = nn.LayerNorm(embed_dims)
        self.readout = nn.Linear(embed_dims, self.out_channels)
        self.residual_mean = residual_mean
        if chunk is not None and chunk < 0:
            raise ValueError(f'chunk must be None (automatic), 0 (off) or positive, got {chunk}')
        self.chunk = chunk
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                    or workers < 1):
            raise ValueError(f'workers must be None (automatic) or a positive int, got {workers!r}')
        self.workers = workers
        self.fused = fused
        if residual_mean:
            nn.init.zeros_(self.readout.weight)
            nn.init.zeros_(self.readout.bias)

    def attention_layers(self) -> list[Attention]:
        """The attention of every block, first block first."""
        return [block.attn for block in self.blocks]

    def runs_blocked(self) -> bool:
        """Whether the forward runs blocked (:mod:`corrkit.layers.blocked`): additive
        attention, rotary or no positions, ``chunk`` not 0, no hooks."""
        return self.chunk != 0 and self.absolute is None and supports_blocking(
            self.blocks, (self.embed, self.norm, self.readout))

    def inference_kernel(self, tokens: Tensor):
        """The fused kernel (:mod:`corrkit.layers.fused`) a forward of ``tokens``
        ``(B, L, T)`` runs on here and now, built if need be; ``None`` where it runs
        PyTorch's kernels."""
        return self._kernel(tokens) if self.runs_blocked() else None

    def _kernel(self, tokens: Tensor):
        """:meth:`inference_kernel` of a forward known to run blocked."""
        if not (self.fused and tokens.shape[1] == self.in_channels and can_fuse(tokens)):
            return None  # (a wrong channel count gets the PyTorch path's error)
        return fused_kernel(kernel_sizes(self.embed, self.blocks, self.norm, self.readout))

    def forward(self, corr: Tensor) -> Tensor:
        """Refine ``corr``; every match attends to a summary of all matches."""
        grid = tuple(corr.shape[2:])
        if self.runs_blocked():
            tokens = corr.flatten(2)  # (B, L, T): each chunk is transposed as it is embedded
            batch, total = tokens.shape[0], tokens.shape[-1]
            chunks = -(-total // (self.chunk or auto_chunk(batch, total)))
            workers = auto_workers(tokens.device, chunks, self.workers)
            chunk = self.chunk or auto_chunk(batch, total, workers=workers)  # equal shares
            kernel = self._kernel(tokens)
            refine = blocked_refine if kernel is None else partial(fused_refine, kernel)
            x = refine(self.embed, self.blocks, self.norm, self.readout, tokens, grid, chunk,
                       workers)
        else:
            x = self.embed(rearrange(corr, 'b l hs ws ht wt -> b (hs ws ht wt) l'))
            if self.absolute is not None:
                x = self.absolute(x, grid)
            for block in self.blocks:
                x = block(x, grid)
            x = self.readout(self.norm(x))
        hs, ws, ht, wt = grid
        out = rearrange(x, 'b (hs ws ht wt) l -> b l hs ws ht wt', hs=hs, ws=ws, ht=ht, wt=wt)
        return out + corr.mean(1, keepdim=True) if self.residual_mean else out
