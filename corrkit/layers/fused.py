"""The refiner's inference forward as a compiled, tile-fused CPU kernel.

The blocked forward (:mod:`corrkit.layers.blocked`) runs each operation of a
block on a chunk of thousands of tokens, one PyTorch kernel after another. The
match-to-match blocks are narrow (16 channels, 8 heads of 4, a hidden layer of
64): each of those kernels does little arithmetic per value it reads, so the
refiner spends most of its time moving chunks between the cache levels. Here
the per-token work of a pass (LayerNorm, the qkv projection, the rotary
embedding, the output projection, the MLP with its exact GELU, the residuals
and the softmax pooling) runs on tiles of :data:`LANES` tokens in registers and
the first-level cache, one token per vector lane, in C compiled for this CPU
(``fused_refiner.c`` beside this module).

The kernel is built at first use with the system's C compiler (``$CC``, else
``cc``, ``gcc`` or ``clang``), once per set of layer sizes, and kept in
:func:`kernel_cache_dir`; a later process loads it from there. It serves
inference only: float32 on the CPU with gradients off, outside autocast, and
where work may leave the calling thread (not under ``torch.compile``, a
dispatch or function mode such as ``FlopCounterMode``, or the profiler: those
get the PyTorch kernels they observe). Where no compiler is found or the build
fails, the refiner warns once and keeps the PyTorch path;
``CORRKIT_FUSED_KERNEL=0`` turns the kernel off everywhere, and
``MatchToMatchRefiner(fused=False)`` for one model. Its results equal the
PyTorch path's up to rounding (its ``exp`` and ``erf`` are polynomial, within
2e-7).
"""
from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import FusedKernelError
from .additive_attention import AdditiveAttention
from .mlp import Mlp
from .pass_schedule import PassBackend, PassSchedule
from .rotary import Rotary4D
from .threads import can_leave_thread
from .torch_passes import OnlineHeadPool, key_weights, pooled_key, query_weights
from .transformer_block import PreNormBlock

__all__ = ['FusedKernelError', 'FusedPassBackend', 'build_kernel', 'can_fuse', 'fused_kernel',
           'fused_refine', 'kernel_cache_dir', 'kernel_sizes']

SOURCE = Path(__file__).with_name('fused_refiner.c')
#: Environment variable that turns the kernel off when set to ``0``.
ENV_SWITCH = 'CORRKIT_FUSED_KERNEL'
#: Environment variable naming the folder the built kernels are kept in.
ENV_CACHE = 'CORRKIT_KERNEL_CACHE'
#: Tokens per tile of the kernel, one per vector lane.
LANES = 16
_CPU_FLOAT = dict(dtype=torch.float32, device='cpu')
#: The compiler's options: multiply-adds contracted (``-std=c11`` alone turns that off),
#: no ``errno`` from the math functions, so that they become single instructions.
FLAGS = ['-O3', '-std=c11', '-ffp-contract=fast', '-fno-math-errno', '-fPIC', '-shared']
#: Code for this CPU's vector units; dropped where the compiler refuses it.
NATIVE = ['-march=native']

_LOCK = threading.Lock()
_LOADED: dict[tuple, ctypes.CDLL | None] = {}
_P, _I64, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
_SIGNATURES = {
    'ck_embed_project': [_I64, _I64, _P, _I64, _I64, _P, _P, _P, _F, _P, _P, _P, _P, _P],
    'ck_key_pool': [_I64, _I64, _P, _P, _P, _P, _P],
    'ck_output': [_I64, _I64, _P, _P, _P, _P, _F, _P, _P, _F, _P, _P, _P, _P, _F, _P],
}


def kernel_cache_dir() -> Path:
    """Where built kernels are kept: ``$CORRKIT_KERNEL_CACHE``, else
    ``$XDG_CACHE_HOME/corrkit/kernels``, else ``~/.cache/corrkit/kernels``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'corrkit' / 'kernels'


def kernel_sizes(embed: nn.Module, blocks: Sequence[nn.Module], norm: nn.Module,
                 readout: nn.Module) -> tuple | None:
    """The compile-time sizes ``(L, E, H, D, M, rope, query_residual)`` of these
    layers, or ``None`` where the kernel does not compute them (the blocks must be
    the default pre-LN additive-attention blocks, all of one size, with biases,
    affine LayerNorms, an exact GELU and :class:`Rotary4D` modules of one size and
    base or none, and the read-out one channel; every parameter float32 on the CPU).
    One walk over the layers, run every forward."""
    def linear(m: nn.Module) -> bool:
        return type(m) is nn.Linear and m.bias is not None and _cpu_float(m.weight, m.bias)

    def layer_norm(m: nn.Module) -> bool:
        return type(m) is nn.LayerNorm and m.weight is not None and m.bias is not None \
            and len(m.normalized_shape) == 1 and _cpu_float(m.weight, m.bias)

    def supported(block: nn.Module) -> bool:
        attn, mlp = getattr(block, 'attn', None), getattr(block, 'mlp', None)
        return (type(block) is PreNormBlock and type(attn) is AdditiveAttention
                and type(mlp) is Mlp and type(mlp.act) is nn.GELU
                and mlp.act.approximate == 'none'
                and all(linear(m) for m in (attn.qkv, attn.proj, mlp.fc1, mlp.fc2))
                and all(layer_norm(m) for m in (block.norm1, block.norm2))
                and _cpu_float(attn.query_weight, attn.key_weight))

    if not (blocks and all(supported(b) for b in blocks) and linear(embed)
            and layer_norm(norm) and linear(readout) and readout.out_features == 1):
        return None
    first = blocks[0].attn
    rope = first.rope
    if rope is not None and type(rope) is not Rotary4D:
        return None
    sizes = (embed.in_features, embed.out_features, first.num_heads, first.head_dims,
             blocks[0].mlp.fc1.out_features, first.rope is not None, first.query_residual)
    for block in blocks:
        attn = block.attn
        if ((attn.embed_dims, attn.num_heads, attn.head_dims, block.mlp.fc1.out_features,
             attn.rope is not None, attn.query_residual) != sizes[1:]
                or (rope is not None and (type(attn.rope) is not Rotary4D
                                          or attn.rope.dims != sizes[2] * sizes[3]
                                          or attn.rope.base != rope.base))):
            return None
    return sizes


def _compiler() -> list[str] | None:
    """The compiler's command: ``$CC`` (which may carry arguments, ``ccache gcc``), else the
    first of ``cc``, ``gcc`` and ``clang`` on the path."""
    if os.environ.get('CC', '').strip():
        return shlex.split(os.environ['CC'])
    path = next((path for name in ('cc', 'gcc', 'clang') if (path := shutil.which(name))), None)
    return None if path is None else [path]


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's feature flags where Linux lists them."""
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.startswith(('flags', 'Features')):
                    return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_kernel(sizes: tuple, cache: Path | None = None) -> Path:
    """The shared library for ``sizes`` (:func:`kernel_sizes`), built if not cached.

    Compiled with :data:`FLAGS` and :data:`NATIVE` (without the latter where the
    compiler refuses it); written under a temporary name and renamed, so that
    processes building at the same time never load a partial file.

    Raises:
        FusedKernelError: No C compiler, or the compiler failed (its output is
            in the message).
    """
    compiler = _compiler()
    if compiler is None:
        raise FusedKernelError('no C compiler found ($CC, cc, gcc or clang)')
    if shutil.which(compiler[0]) is None:
        raise FusedKernelError(f'the C compiler {compiler[0]!r} was not found')
    cache = kernel_cache_dir() if cache is None else cache
    names = ('L', 'E', 'H', 'D', 'M', 'ROPE', 'QRES')
    defines = [f'-D{name}={int(value)}' for name, value in zip(names, sizes)]
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b'\0'.join([source, ' '.join(FLAGS + NATIVE + defines).encode(),
                                     ' '.join(compiler).encode(), _cpu_signature().encode(),
                                     sys.platform.encode()]))
    target = cache / f'fused_refiner_{key.hexdigest()[:20]}.so'
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    errors = []
    for arch in (NATIVE, []):
        handle, partial = tempfile.mkstemp(suffix='.so', dir=cache)
        os.close(handle)
        command = [*compiler, *FLAGS, *arch, *defines, str(SOURCE), '-o', partial, '-lm']
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as error:
            result = None
            errors.append(f'{" ".join(command)}: {error}')
        if result is not None and result.returncode == 0:
            os.replace(partial, target)
            return target
        if result is not None:
            errors.append(f'{" ".join(command)} exited with {result.returncode}:\n'
                          f'{result.stderr.strip()[-2000:]}')
        Path(partial).unlink(missing_ok=True)
    raise FusedKernelError('building the fused refiner kernel failed:\n' + '\n'.join(errors))


def _load(sizes: tuple) -> ctypes.CDLL:
    path = build_kernel(sizes)
    try:
        library = ctypes.CDLL(str(path))
    except OSError:  # a damaged file in the cache: build it again, once
        path.unlink(missing_ok=True)
        library = ctypes.CDLL(str(build_kernel(sizes)))
    for name, argtypes in _SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argtypes, None
    return library


def fused_kernel(sizes: tuple | None) -> ctypes.CDLL | None:
    """The loaded kernel for ``sizes``, built on first use; ``None`` where the sizes
    are not supported, ``CORRKIT_FUSED_KERNEL=0`` is set, or the build failed (which
    warns once per process and size)."""
    if sizes is None or os.environ.get(ENV_SWITCH, '1') == '0':
        return None
    with _LOCK:
        if sizes not in _LOADED:
            try:
                _LOADED[sizes] = _load(sizes)
            except (FusedKernelError, OSError) as error:
                _LOADED[sizes] = None
                warnings.warn(f'corrkit: the refiner runs without its fused CPU kernel, '
                              f'slower ({error}); set {ENV_SWITCH}=0 to silence this',
                              RuntimeWarning, stacklevel=3)
    return _LOADED[sizes]


def _cpu_float(*tensors: Tensor) -> bool:
    return all(t.device.type == 'cpu' and t.dtype == torch.float32 for t in tensors)


def can_fuse(tokens: Tensor) -> bool:
    """Whether the kernel may compute a forward of ``tokens`` now: float32 on the
    CPU, no gradient needed, no CPU autocast, and nothing observing this thread
    (the layers' side is :func:`kernel_sizes`)."""
    return (_cpu_float(tokens) and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled('cpu') and can_leave_thread())


def _pack_block(block: PreNormBlock) -> Tensor:
    attn, mlp = block.attn, block.mlp
    parts = (block.norm1.weight, block.norm1.bias, attn.qkv.weight.t(), attn.qkv.bias,
             query_weights(attn), attn.proj.weight.t(), attn.proj.bias,
             block.norm2.weight, block.norm2.bias, mlp.fc1.weight.t(), mlp.fc1.bias,
             mlp.fc2.weight.t(), mlp.fc2.bias)
    return _flat(*parts)


def _flat(*tensors: Tensor) -> Tensor:
    return torch.cat([t.detach().float().reshape(-1) for t in tensors])


def fused_refine(kernel: ctypes.CDLL, embed: nn.Linear, blocks: Sequence[PreNormBlock],
                 norm: nn.LayerNorm, readout: nn.Linear, tokens: Tensor,
                 grid: tuple[int, int, int, int], chunk: int, workers: int = 1) -> Tensor:
    """:func:`corrkit.layers.blocked.blocked_refine` computed by the fused kernel.

    The same passes over the same chunks, dealt to ``workers`` threads the same
    way (:class:`~corrkit.layers.pass_schedule.PassSchedule`; ctypes releases the
    GIL during each call); each call of the kernel handles one chunk of every
    sample. Chunks are rounded up to whole tiles of :data:`LANES` tokens. Only for
    :func:`can_fuse` inputs and a kernel built for these layers'
    :func:`kernel_sizes`.

    Shape:
        - tokens: ``(B, L, T)``
        - output: ``(B, T, 1)``
    """
    batch, channels, total = tokens.shape
    if channels != embed.in_features:
        raise ValueError(f'tokens have {channels} channels, the embedding takes '
                         f'{embed.in_features}')
    if not can_fuse(tokens):
        raise ValueError('the fused kernel computes float32 CPU tokens without gradients '
                         f'(can_fuse), got {tokens.dtype} on {tokens.device}')
    if math.prod(grid) != total:
        raise ValueError(f'{total} tokens do not match the 4D grid {tuple(grid)}')
    chunk = -(-chunk // LANES) * LANES  # whole tiles, so that the chunks' tiles are the table's
    schedule = PassSchedule(total, chunk, workers)
    backend = FusedPassBackend(kernel, embed, blocks, norm, readout, grid, schedule)
    return backend.refine(tokens)


class FusedPassBackend(PassBackend[OnlineHeadPool]):
    """The :class:`~corrkit.layers.pass_schedule.PassBackend` of the compiled
    kernel: each chunk's pass is one call into it, a share is a partial pool in
    the kernel's layout.

    Args:
        kernel: The loaded kernel (:func:`fused_kernel`) for these layers' sizes.
        embed: Token embedding.
        blocks: The default pre-LN additive-attention blocks (:func:`kernel_sizes`).
        norm: Final LayerNorm.
        readout: Final projection to one channel.
        grid: The 4D grid the tokens flatten.
        schedule: The chunks (whole tiles of :data:`LANES` tokens) and threads.
    """

    def __init__(self, kernel: ctypes.CDLL, embed: nn.Linear, blocks: Sequence[PreNormBlock],
                 norm: nn.LayerNorm, readout: nn.Linear, grid: tuple[int, int, int, int],
                 schedule: PassSchedule):
        self.kernel, self.schedule, self.depth = kernel, schedule, len(blocks)
        self.attns = [block.attn for block in blocks]
        attn = blocks[0].attn
        self.heads, self.head_dims = attn.num_heads, attn.head_dims
        self.inner = inner = attn.num_heads * attn.head_dims
        self.packed = [_pack_block(block) for block in blocks]
        self.embed_params = _flat(embed.weight.t(), embed.bias)
        self.final = _flat(norm.weight, norm.bias, readout.weight, readout.bias)
        self.final_eps, self.dims = norm.eps, embed.out_features
        # each LayerNorm's eps in the order the passes meet them (the last one unused)
        self.eps = [eps for block in blocks for eps in (block.norm1.eps, block.norm2.eps)]
        self.eps.append(self.eps[-1])
        table = (attn.rope.lane_table(grid, LANES) if attn.rope is not None
                 else torch.zeros(1, **_CPU_FLOAT))
        self.table = table  # kept alive: the kernel reads it through the pointers below
        self.rows = [(b.start, b.stop - b.start, table.data_ptr() + b.start * inner * 4)
                     for b in schedule.bounds]  # per chunk: first token, tokens, table

    def refine(self, tokens: Tensor) -> Tensor:
        """The read-out ``(B, T, 1)`` of float32 CPU ``tokens`` ``(B, L, T)``."""
        self.tokens = tokens if tokens.stride(-1) == 1 else tokens.contiguous()
        self.batch = batch = tokens.shape[0]
        tiles = [-(-count // LANES) for _, count, _ in self.rows]
        self.xs = [torch.empty(batch * n * self.dims * LANES, **_CPU_FLOAT) for n in tiles]
        self.kept = [torch.empty(3 * batch * n * self.inner * LANES, **_CPU_FLOAT)
                     for n in tiles]
        self.out = [torch.empty(batch, n * LANES, **_CPU_FLOAT) for n in tiles]  # its layouts
        return self.schedule.run(self)

    def new_share(self) -> OnlineHeadPool:
        pool = OnlineHeadPool()
        pool.max = torch.full((self.batch, self.heads, 1), float('-inf'), **_CPU_FLOAT)
        pool.norm = torch.zeros(self.batch, self.heads, 1, **_CPU_FLOAT)
        pool.sum = torch.zeros(self.batch, self.heads, self.head_dims, **_CPU_FLOAT)
        return pool

    def first_pass(self, pool: OnlineHeadPool, chunk: int) -> None:
        start, count, table = self.rows[chunk]
        sb, sl, _ = self.tokens.stride()
        self.kernel.ck_embed_project(
            self.batch, count, self.tokens.data_ptr() + start * 4, sb, sl,
            self.embed_params.data_ptr(), self.packed[0].data_ptr(), table, self.eps[0],
            self.xs[chunk].data_ptr(), self.kept[chunk].data_ptr(), *_pool_args(pool))

    def merge_queries(self, block: int, pools: Sequence[OnlineHeadPool]) -> None:
        self.global_query = OnlineHeadPool.merge(pools).result()
        self.key_scores = key_weights(self.attns[block], self.global_query).contiguous()

    def pool_keys(self, pool: OnlineHeadPool, block: int, chunk: int) -> None:
        _, count, _ = self.rows[chunk]
        self.kernel.ck_key_pool(self.batch, count, self.kept[chunk].data_ptr(),
                                self.key_scores.data_ptr(), *_pool_args(pool))

    def merge_keys(self, block: int, pools: Sequence[OnlineHeadPool]) -> None:
        self.global_key = pooled_key(self.global_query, OnlineHeadPool.merge(pools)).contiguous()

    def output_pass(self, pool: OnlineHeadPool, block: int, chunk: int) -> None:
        _, count, table = self.rows[chunk]
        following = self.packed[block + 1].data_ptr() if block + 1 < self.depth else None
        self.kernel.ck_output(
            self.batch, count, self.xs[chunk].data_ptr(), self.kept[chunk].data_ptr(),
            self.global_key.data_ptr(), self.packed[block].data_ptr(), self.eps[2 * block + 1],
            following, table, self.eps[2 * block + 2], *_pool_args(pool),
            self.final.data_ptr(), self.final_eps, self.out[chunk].data_ptr())

    def finish(self, pools: Sequence[OnlineHeadPool]) -> Tensor:
        parts = [o[:, :count] for o, (_, count, _) in zip(self.out, self.rows)]
        return torch.cat(parts, 1)[..., None]


def _pool_args(pool: OnlineHeadPool) -> tuple[int, int, int]:
    return pool.max.data_ptr(), pool.norm.data_ptr(), pool.sum.data_ptr()
