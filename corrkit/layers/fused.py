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
:func:`kernel_cache_dir`, a folder private to the user (see :func:`build_kernel`:
a library is loaded only where its recorded SHA-256 matches); a later process loads
it from there. It serves
inference only: float32 on the CPU with gradients off, outside autocast, and
where work may leave the calling thread (not under ``torch.compile``, a
dispatch or function mode such as ``FlopCounterMode``, or the profiler: those
get the PyTorch kernels they observe). Where no compiler is found or the build
fails, or the library built cannot be loaded, the refiner warns once and keeps the
PyTorch path for the process;
``CORRKIT_FUSED_KERNEL=0`` turns the kernel off everywhere, and
``MatchToMatchRefiner(fused=False)`` for one model. Its results equal the
PyTorch path's up to rounding (its ``exp`` and ``erf`` are polynomial, within
2e-7).
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import stat as stat_mode
import subprocess
import sys
import tempfile
import threading
import time
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


def _cache_key(sizes: tuple, compiler: list[str]) -> tuple[str, list[str]]:
    """The libraries' common name for ``sizes`` and this compiler, CPU and source, and the
    compiler's ``-D`` options."""
    names = ('L', 'E', 'H', 'D', 'M', 'ROPE', 'QRES')
    defines = [f'-D{name}={int(value)}' for name, value in zip(names, sizes)]
    key = hashlib.sha256(b'\0'.join([SOURCE.read_bytes(),
                                     ' '.join(FLAGS + NATIVE + defines).encode(),
                                     ' '.join(compiler).encode(), _cpu_signature().encode(),
                                     sys.platform.encode()]))
    return f'fused_refiner_{key.hexdigest()[:20]}', defines


class _Unusable(FusedKernelError):
    """A library or record in the cache that is not loaded (the message says why)."""


#: Folders refused as caches in this process: each is warned about once.
_REFUSED: set[str] = set()
#: This process's private folder, where the refused caches' kernels are built.
_FALLBACK: list[Path] = []
#: Descriptors of the loaded libraries, kept open: each was loaded as /proc/self/fd/N.
_KEPT: list[int] = []
_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_DIRECTORY = getattr(os, 'O_DIRECTORY', 0)
_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_NONBLOCK = getattr(os, 'O_NONBLOCK', 0)  # a FIFO planted as a library does not block
#: Guards the refused folders and the private one.
_CACHE_LOCK = threading.Lock()
#: Seconds after which a replaced library or a partial file is removed.
_STALE_S = 600
#: The largest record and library read back (a library is about 40 KB).
_MAX_BYTES = 64 << 20


def _not_private(stat: os.stat_result, what: str) -> str | None:
    """Why a file or folder with this ``stat`` may not be trusted, or ``None``."""
    if hasattr(os, 'geteuid') and stat.st_uid != os.geteuid():
        return f'{what} belongs to another user (uid {stat.st_uid})'
    if stat.st_mode & 0o022:
        writers = ' and '.join(n for n, bit in (('group', 0o020), ('others', 0o002))
                               if stat.st_mode & bit)
        return f'{what} is writable by {writers} (mode {stat.st_mode & 0o7777:o})'
    return None


def _open_private(folder: Path) -> tuple[int | None, str]:
    """The folder, created (and its missing parents) with mode 0700, opened without
    following a symbolic link, and its descriptor; ``(None, why)`` where it is not private
    (not a folder, a symbolic link, another user's, writable by group or others)."""
    created = []
    for part in reversed([folder, *folder.parents]):
        if not os.path.lexists(part):
            try:
                os.mkdir(part, 0o700)
                created.append(part)
            except FileExistsError:
                pass
            except OSError as error:
                return None, f'it cannot be created ({error.strerror})'
    if os.path.islink(folder):
        return None, 'it is a symbolic link'
    try:
        fd = os.open(folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as error:
        return None, ('it is a symbolic link' if os.path.islink(folder)
                      else f'it cannot be opened ({error.strerror})')
    stat = os.fstat(fd)
    why = _not_private(stat, 'it')
    if why is None and created and stat.st_mode & 0o700 != 0o700:
        os.fchmod(fd, 0o700)  # a umask that removed the owner's bits
    if why is not None:
        os.close(fd)
        return None, why
    return fd, ''


def _open_cache(cache: Path | None) -> tuple[Path, int]:
    """The kernel cache (:func:`kernel_cache_dir` unless given) and its open descriptor;
    where it is not private, a private temporary folder for this process instead, with one
    warning per process naming the refused one."""
    folder = kernel_cache_dir() if cache is None else Path(cache)
    fd, why = _open_private(folder)
    if fd is not None:
        return folder, fd
    with _CACHE_LOCK:
        if not _FALLBACK:
            _FALLBACK.append(Path(tempfile.mkdtemp(prefix='corrkit-kernels-')))
            atexit.register(shutil.rmtree, _FALLBACK[0], ignore_errors=True)
        warn = str(folder) not in _REFUSED
        _REFUSED.add(str(folder))
    if warn:
        warnings.warn(f'corrkit: the kernel cache {folder} is not used: {why}; the fused '
                      f'kernel is built in {_FALLBACK[0]} for this process instead (a cache '
                      f'must be a folder of yours, not a symbolic link, that only you can '
                      f'write to: chmod 700, or set {ENV_CACHE})', RuntimeWarning, stacklevel=4)
    fd, fallback_why = _open_private(_FALLBACK[0])
    if fd is None:
        raise FusedKernelError(f'the kernel cache {folder} is not used ({why}), nor the '
                               f'private folder {_FALLBACK[0]} ({fallback_why})')
    return _FALLBACK[0], fd


def _open_checked(folder: int, name: str, what: str) -> int:
    """``name`` in the open ``folder`` opened for reading, not through a symbolic link,
    a regular file of this user that only they can write to.

    Raises:
        FileNotFoundError: There is none.
        _Unusable: It is not such a file.
    """
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK, dir_fd=folder)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise _Unusable(f'its {what} {name} cannot be opened ({error.strerror}; '
                        f'a symbolic link is not followed)') from None
    stat = os.fstat(fd)
    why = (f'{what} {name} is not a regular file' if not stat_mode.S_ISREG(stat.st_mode)
           else _not_private(stat, f'{what} {name}'))
    if why is None and stat.st_size > _MAX_BYTES:
        why = f'{what} {name} has {stat.st_size} bytes'
    if why is not None:
        os.close(fd)
        raise _Unusable(why)
    return fd


def _read_all(fd: int) -> bytes:
    parts, offset = [], 0
    while part := os.pread(fd, 1 << 20, offset):
        parts.append(part)
        offset += len(part)
    return b''.join(parts)


def _verified_library(folder: int, stem: str) -> tuple[int, str]:
    """The cached library for ``stem``, open, with the SHA-256 and size its record
    (``<stem>.json``) gives, and its name.

    Raises:
        FileNotFoundError: No record or no library: none was built (or one was removed).
        _Unusable: The record or the library is damaged or not private.
    """
    record_fd = _open_checked(folder, f'{stem}.json', 'record')
    try:
        try:
            record = json.loads(_read_all(record_fd))
            name, size, digest = record['library'], int(record['size']), record['sha256']
        except (ValueError, KeyError, TypeError) as error:
            raise _Unusable(f'its record {stem}.json is unreadable ({error})') from None
    finally:
        os.close(record_fd)
    if not (isinstance(name, str) and name.startswith(f'{stem}-') and name.endswith('.so')
            and not set(name) & {'/', '\\', '\0'}):
        raise _Unusable(f'its record {stem}.json names {name!r}')
    fd = _open_checked(folder, name, 'library')
    data = _read_all(fd)
    if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
        os.close(fd)
        raise _Unusable(f'the library {name} is not the one built ({len(data)} bytes, '
                        f'{size} recorded; its SHA-256 differs from the record\'s)'
                        if len(data) != size else
                        f'the library {name} is not the one built (its SHA-256 differs '
                        f'from the record\'s)')
    return fd, name


def _write_atomic(folder: int, name: str, data: bytes, mode: int) -> None:
    """``name`` in the open ``folder`` holds ``data`` (mode ``mode``), whole: written to
    a new file, flushed to the disk, then renamed over it."""
    partial = f'.{name}.{os.getpid()}.{os.urandom(6).hex()}.partial'
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode,
                 dir_fd=folder)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=folder)
        raise


def _compile(compiler: list[str], defines: list[str]) -> tuple[bytes, list[str]]:
    """The library compiled with :data:`FLAGS` and :data:`NATIVE` (without the latter
    where the compiler refuses it) in a private temporary folder, and its command."""
    errors = []
    with tempfile.TemporaryDirectory(prefix='corrkit-build-') as build:
        output = os.path.join(build, 'fused_refiner.so')
        for arch in (NATIVE, []):
            command = [*compiler, *FLAGS, *arch, *defines, str(SOURCE), '-o', output, '-lm']
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as error:
                errors.append(f'{" ".join(command)}: {error}')
                continue
            if result.returncode == 0:
                try:
                    return Path(output).read_bytes(), command
                except OSError as error:
                    errors.append(f'{" ".join(command)} wrote no library: {error}')
                    continue
            errors.append(f'{" ".join(command)} exited with {result.returncode}:\n'
                          f'{result.stderr.strip()[-2000:]}')
    raise FusedKernelError('building the fused refiner kernel failed:\n' + '\n'.join(errors))


def _build_into(folder: int, stem: str, compiler: list[str], defines: list[str]) -> str:
    """Compile the library for ``stem`` and keep it in the open ``folder``: the library
    ``<stem>-<SHA-256 prefix>.so``, then its record ``<stem>.json`` (its name, size and
    SHA-256, and the command), each written whole and renamed into place, the record
    last. Returns the library's name."""
    data, command = _compile(compiler, defines)
    digest = hashlib.sha256(data).hexdigest()
    name = f'{stem}-{digest[:16]}.so'
    _write_atomic(folder, name, data, 0o700)
    record = {'library': name, 'size': len(data), 'sha256': digest, 'command': command}
    _write_atomic(folder, f'{stem}.json', json.dumps(record, indent=1).encode(), 0o600)
    with contextlib.suppress(OSError):
        os.fsync(folder)  # the renames too
    for other in os.listdir(folder):  # earlier builds replaced, partial files left by a crash
        if other != name and (other.startswith(f'{stem}-') and other.endswith('.so')
                              or other.startswith(f'.{stem}') and other.endswith('.partial')):
            with contextlib.suppress(OSError):  # not one another process is writing or loading
                if time.time() - os.stat(other, dir_fd=folder,
                                         follow_symlinks=False).st_mtime > _STALE_S:
                    os.unlink(other, dir_fd=folder)
    return name


def _compiler_or_raise() -> list[str]:
    compiler = _compiler()
    if compiler is None:
        raise FusedKernelError('no C compiler found ($CC, cc, gcc or clang)')
    if shutil.which(compiler[0]) is None:
        raise FusedKernelError(f'the C compiler {compiler[0]!r} was not found')
    return compiler


def build_kernel(sizes: tuple, cache: Path | None = None) -> Path:
    """The shared library for ``sizes`` (:func:`kernel_sizes`), built if not cached.

    The cache (:func:`kernel_cache_dir` unless given) must be private: a folder of this
    user's, not a symbolic link, that group and others cannot write to (it is created
    with mode 0700); where it is not, the library is built in a private temporary folder
    for this process, with one warning. A cached library is used where its record
    (``<name>.json``: size and SHA-256) matches it and it is a regular file of this user's
    that only they can write; otherwise it is built again. A build is compiled with
    :data:`FLAGS` and :data:`NATIVE` (without the latter where the compiler refuses it)
    in a temporary folder, then written into the cache under a temporary name, flushed to
    the disk (``fsync``) and renamed, the library first, its record last; processes
    building at the same time never see a partial file.

    Raises:
        FusedKernelError: No C compiler, or the compiler failed (its output is
            in the message).
    """
    compiler = _compiler_or_raise()
    path, folder = _open_cache(cache)
    try:
        stem, defines = _cache_key(sizes, compiler)
        try:
            fd, name = _verified_library(folder, stem)
            os.close(fd)
            return path / name
        except (FileNotFoundError, _Unusable):
            pass
        return path / _build_into(folder, stem, compiler, defines)
    finally:
        os.close(folder)


def _open_library(folder: int, path: Path, stem: str) -> ctypes.CDLL:
    """The verified library of ``stem`` loaded, with its functions' signatures set.

    Loaded from the descriptor that was checked (``/proc/self/fd/N`` where there is one),
    so that the file loaded is the file whose SHA-256 was compared, whatever happens to
    the path meanwhile; the descriptor is kept open.

    Raises:
        FileNotFoundError: None is cached.
        _Unusable: It fails its check, does not load or lacks a function.
    """
    fd, name = _verified_library(folder, stem)
    by_fd = f'/proc/self/fd/{fd}'
    try:
        library = ctypes.CDLL(by_fd if os.path.exists(by_fd) else str(path / name))
    except OSError as error:
        os.close(fd)
        raise _Unusable(f'the library {name} does not load ({error})') from None
    _KEPT.append(fd)  # its number is the loaded library's name: never reused
    for function, argtypes in _SIGNATURES.items():
        try:
            entry = getattr(library, function)
        except AttributeError:
            raise _Unusable(f'the library {name} lacks the function {function}') from None
        entry.argtypes, entry.restype = argtypes, None
    return library


def _load(sizes: tuple) -> ctypes.CDLL:
    """The kernel for ``sizes`` loaded from the cache, built where there is none, and
    built once again where the cached one fails its check, does not load or lacks a
    function.

    Raises:
        FusedKernelError: The build failed, or the library just built cannot be used.
    """
    compiler = _compiler_or_raise()
    path, folder = _open_cache(None)
    try:
        stem, defines = _cache_key(sizes, compiler)
        try:
            return _open_library(folder, path, stem)
        except FileNotFoundError:
            pass
        except _Unusable:
            pass  # a damaged or foreign file: replaced by a new build, once
        _build_into(folder, stem, compiler, defines)
        try:
            return _open_library(folder, path, stem)
        except (FileNotFoundError, _Unusable) as error:
            raise FusedKernelError(f'the kernel built in {path} cannot be used: '
                                   f'{error}') from None
    finally:
        os.close(folder)


def fused_kernel(sizes: tuple | None) -> ctypes.CDLL | None:
    """The loaded kernel for ``sizes``, built on first use; ``None`` where the sizes
    are not supported, ``CORRKIT_FUSED_KERNEL=0`` is set, or the kernel cannot be built
    or loaded (which warns once per process and size: the refiner then runs its PyTorch
    kernels, and nothing is tried again)."""
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
