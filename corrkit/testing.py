"""Contract checkers: one function per role, for corrkit's tests and for plugin authors'.

Each ``check_*`` takes a built component, runs it on small random inputs and
raises :class:`~corrkit.errors.ContractError` naming the component's class and
what broke:

- it implements its role's ABC and has the role's declared attributes;
- its outputs have the role's shapes and are finite;
- outputs follow the input's dtype (once per entry of ``dtypes``) and device
  (the component's own);
- gradients reach every parameter that requires grad, and the inputs of the
  roles downstream of the backbone (a fine-tuned backbone learns through them).

**Dtypes and devices, exactly.** For each entry of ``dtypes`` (float32 and
float64 by default) a checker deep-copies the component and converts the copy
with ``module.to(dtype)``, which converts its floating-point parameters and
buffers; the random inputs are made in that dtype, on the device of the
component's first parameter (else its first buffer, else the CPU), and every
output must have the input's dtype and device. So a component needs no cast for
its own parameters and buffers. It must make the tensors it creates in
``forward`` like its input (``x.new_zeros(...)``, ``torch.arange(n,
device=x.device, dtype=x.dtype)``), and keep constant tensors as buffers
(``register_buffer(..., persistent=False)``), not as plain attributes, which
``.to()`` and ``.cuda()`` leave behind. The checkers turn no autocast on (call
them outside one) and run in the mode the component is in (``train()`` or ``eval()``); the component
passed in is not modified. Under autocast (``--precision bf16``, ``--amp``) the
parameters stay float32 while inputs may be bfloat16 or float16: the operations
autocast lists (``nn.Linear``, convolutions, matrix products, ``einsum``) cast
their operands, and element-wise operations promote, so no cast is needed
there either; operations that require equal dtypes and that autocast does not
cast (``index_put_``, ``scatter_`` with a ``src``, custom autograd functions or
kernels) need the operands brought to one dtype by the component. Under
autocast an output may come out in another floating dtype than its input; the
matchers compute points and pixels in float32 whatever it is.

**Gradients, exactly.** One backward pass of a fixed random projection of the
outputs (``sum(out * r)``) must give every parameter with ``requires_grad``, and
every input the checker marks (each role's docstring says which), a gradient
that exists and is finite. A gradient that is exactly zero passes: a layer
initialised at zero blocks the gradient of the layers before it at the start,
and training moves it. A missing gradient fails: the parameter is not used,
or the output reaches it only through a detached, ``no_grad`` or integer path
(``.item()``, ``argmax``). :func:`check_keypoint_head` and the loss checkers ask
more; their docstrings say what.

Examples:
    >>> from corrkit.models.refiners import MeanRefiner
    >>> check_refiner(MeanRefiner(in_channels=3))
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import Tensor, nn

from .errors import ContractError
from .layers import Attention
from .layers.base import check_shape, describe
from .models.base import (Backbone, CorrelationBuilder, FlowHead, FlowPrediction, ImageFeatures,
                          ImageFrame, KeypointHead, KeypointPrediction, Matcher, Neck,
                          PointMatches, Refiner, SimilarityLoss)
from .ops import flow_to_target

__all__ = ['check_attention', 'check_backbone', 'check_correlation', 'check_head',
           'check_keypoint_head', 'check_loss', 'check_matcher', 'check_similarity_loss',
           'check_neck', 'check_refiner']

DTYPES = (torch.float32, torch.float64)


def _fail(module: nn.Module, role: str, what: str) -> ContractError:
    return ContractError(f'{describe(module)} breaks the {role} contract: {what}')


def _device(module: nn.Module) -> torch.device:
    tensor = next(iter(module.parameters()), None)
    tensor = tensor if tensor is not None else next(iter(module.buffers()), None)
    return tensor.device if tensor is not None else torch.device('cpu')


def _check_role(module: nn.Module, role: type, dtypes: Sequence[torch.dtype]) -> None:
    """Raise unless ``module`` implements ``role`` and has its declared attributes."""
    if not isinstance(module, role):
        raise ContractError(f'{describe(module)} is not a {role.__module__}.{role.__name__}; '
                            f'subclass it to implement that role')
    for name in role.declared_attributes:
        if not hasattr(module, name):
            raise _fail(module, role.__name__, f'declared attribute {name!r} is missing')
    if not dtypes:
        raise ValueError('dtypes is empty: name at least one dtype to run the checks in')


def _copies(module: nn.Module, role: type, dtypes: Sequence[torch.dtype]):
    """``(copy of module in dtype, dtype)`` per dtype, after checking the role (eagerly)."""
    _check_role(module, role, dtypes)
    return ((copy.deepcopy(module).to(dtype), dtype) for dtype in dtypes)


def _random(shape: Sequence[int], dtype: torch.dtype, device: torch.device, seed: int,
            positive: bool = False, requires_grad: bool = True) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=generator) if positive else torch.randn(
        *shape, generator=generator)
    return x.to(dtype=dtype, device=device).requires_grad_(requires_grad)


def _check_output(out: Tensor, expected: Sequence[int | None], names: str, role: str,
                  module: nn.Module, like: Tensor) -> None:
    check_shape(out, expected, names, role, module)
    if out.dtype != like.dtype:
        raise _fail(module, role, f'output dtype {out.dtype} does not follow the input dtype '
                                  f'{like.dtype} (no hard-coded dtypes)')
    if out.device != like.device:
        raise _fail(module, role, f'output on {out.device} does not follow the input on '
                                  f'{like.device} (no hard-coded devices)')
    if not torch.isfinite(out).all():
        raise _fail(module, role, f'output of shape {tuple(out.shape)} has NaN or infinite '
                                  f'entries')


def _check_gradients(module: nn.Module, role: str, outputs: Sequence[Tensor],
                     inputs: Sequence[Tensor], seed: int) -> None:
    """Backpropagate a random projection of ``outputs``; every input and trainable
    parameter must get a finite gradient."""
    named = [(f'parameter {n!r}', p) for n, p in module.named_parameters() if p.requires_grad]
    named += [(f'input {i}', x) for i, x in enumerate(inputs) if x.requires_grad]
    if not named:
        return
    generator = torch.Generator().manual_seed(seed)
    total = sum((out * torch.randn(out.shape, generator=generator).to(out)).sum()
                for out in outputs)
    if not torch.is_tensor(total) or not total.requires_grad:
        raise _fail(module, role, f'no gradient reaches {named[0][0]}: the output does not '
                                  f'depend on it differentiably (detached or no_grad?)')
    grads = torch.autograd.grad(total, [t for _, t in named], allow_unused=True)
    for (name, _), grad in zip(named, grads):
        if grad is None:
            raise _fail(module, role, f'no gradient reaches {name}')
        if not torch.isfinite(grad).all():
            raise _fail(module, role, f'the gradient of {name} has NaN or infinite entries')


def check_backbone(backbone: Backbone, image_size: tuple[int, int] = (70, 53), batch: int = 2,
                   dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.Backbone` against its contract.

    Per entry of ``dtypes``, a copy converted to that dtype encodes random images
    in that dtype on the backbone's device (the images need no gradient). Each
    map must have the declared channels and the size
    :meth:`~corrkit.models.base.Backbone.feature_sizes` gives, the images' dtype
    and device, finite values, and every trainable parameter an existing, finite
    gradient (a frozen backbone has none to check).

    Args:
        backbone: The component, in the mode it is to be checked in.
        image_size: ``(H, W)`` of the test images (odd sizes exercise
            :meth:`~corrkit.models.base.Backbone.feature_sizes`'s rounding).
        batch: Number of images ``N``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.

    Shape:
        - images: ``(N, 3, H, W)``
        - checked output: one ``(N, C_i, h_i, w_i)`` per ``out_channels`` entry
    """
    role = 'Backbone'
    _check_role(backbone, Backbone, dtypes)
    if len(backbone.out_channels) != len(backbone.strides) or not backbone.strides:
        raise _fail(backbone, role, f'out_channels {list(backbone.out_channels)} and strides '
                                    f'{list(backbone.strides)} need one entry per map')
    for net, dtype in _copies(backbone, Backbone, dtypes):
        # nothing upstream of a backbone needs the gradient of its images
        images = _random((batch, 3, *image_size), dtype, _device(net), seed, requires_grad=False)
        feats = net(images)
        if not isinstance(feats, (list, tuple)) or len(feats) != len(net.out_channels):
            got = len(feats) if isinstance(feats, (list, tuple)) else type(feats).__name__
            raise _fail(net, role, f'expected a list of {len(net.out_channels)} feature maps, '
                                   f'got {got}')
        for i, (feat, c, size) in enumerate(zip(feats, net.out_channels,
                                                net.feature_sizes(*image_size))):
            _check_output(feat, (batch, c, *size), f'N C_{i} H_{i} W_{i}', role, net, images)
        _check_gradients(net, role, feats, [], seed)


def check_neck(neck: Neck, in_channels: Sequence[int] | None = None,
               in_strides: Sequence[int] | None = None,
               sizes: Sequence[tuple[int, int]] | None = None, batch: int = 2,
               dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.Neck` against its contract.

    Per entry of ``dtypes``, a copy converted to that dtype gets random maps in
    that dtype on the neck's device, with ``requires_grad``; its outputs must
    follow their dtype and device and pass the gradient check (every input map
    and trainable parameter).

    The input maps are those of a backbone with ``in_strides`` on an image of
    ``6 s × 5 s`` pixels, ``s`` the least common multiple of the strides (so
    every map is whole cells and coarser maps are smaller); their sizes feed
    :meth:`~corrkit.models.base.Neck.output_sizes`, and each output map ``j`` must
    then be ``ceil(H / strides[j])`` × ``ceil(W / strides[j])`` cells, as a
    backbone's maps are (a neck that upsamples divides its strides). Given
    ``sizes``, the maps are of those sizes and the strides are not compared.

    Args:
        neck: The component.
        in_channels: Channels of each input map; default ``neck.in_channels``
            (the value the matcher injected).
        in_strides: Stride of each input map; default ``neck.in_strides``.
        sizes: ``(h_i, w_i)`` of each input map; default derived from ``in_strides``.
        batch: Number of images ``N``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.
        TypeError: If ``in_channels`` or ``in_strides`` is neither given nor set on
            the neck.

    Shape:
        - input: one ``(N, C_i, h_i, w_i)`` per ``in_channels`` entry
        - checked output: one ``(N, C'_j, h'_j, w'_j)`` per ``out_channels`` entry

    Examples:
        >>> from corrkit.models.necks import IdentityNeck
        >>> check_neck(IdentityNeck(in_channels=[4, 8], in_strides=[8, 16]))
    """
    role = 'Neck'
    _check_role(neck, Neck, dtypes)
    channels = list(in_channels if in_channels is not None else _injected(neck, 'in_channels'))
    strides = list(in_strides if in_strides is not None else _injected(neck, 'in_strides'))
    if len(neck.out_channels) != len(neck.strides) or not neck.strides:
        raise _fail(neck, role, f'out_channels {list(neck.out_channels)} and strides '
                                f'{list(neck.strides)} need one entry per map')
    image = None
    if sizes is None:  # every stride divides the image: no rounding to argue about
        image = (6 * math.lcm(*strides), 5 * math.lcm(*strides))
        sizes = [(image[0] // s, image[1] // s) for s in strides]
    sizes = [tuple(s) for s in sizes]
    out_sizes = neck.output_sizes(sizes)
    if len(out_sizes) != len(neck.out_channels):
        raise _fail(neck, role, f'output_sizes gives {len(out_sizes)} sizes for '
                                f'{len(neck.out_channels)} out_channels entries')
    if image is not None:
        for j, (stride, size) in enumerate(zip(neck.strides, out_sizes)):
            expected = (math.ceil(image[0] / stride), math.ceil(image[1] / stride))
            if tuple(size) != expected:
                raise _fail(neck, role, f'map {j} is {tuple(size)} cells for a '
                                        f'{image[0]}x{image[1]} image, but its stride '
                                        f'{stride} means {expected}')
    for net, dtype in _copies(neck, Neck, dtypes):
        device = _device(net)
        feats = [_random((batch, c, *s), dtype, device, seed + i)
                 for i, (c, s) in enumerate(zip(channels, sizes))]
        out = net(feats)
        if not isinstance(out, (list, tuple)) or len(out) != len(net.out_channels):
            got = len(out) if isinstance(out, (list, tuple)) else type(out).__name__
            raise _fail(net, role, f'expected a list of {len(net.out_channels)} feature maps, '
                                   f'got {got}')
        for j, (feat, c, size) in enumerate(zip(out, net.out_channels, out_sizes)):
            _check_output(feat, (batch, c, *size), f'N C_{j} H_{j} W_{j}', role, net, feats[0])
        _check_gradients(net, role, out, feats, seed)


def check_correlation(builder: CorrelationBuilder, in_channels: Sequence[int] | None = None,
                      source_size: tuple[int, int] = (6, 6), target_size: tuple[int, int] = (5, 5),
                      grid: tuple[int, int, int, int] | None = None, batch: int = 2,
                      dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.CorrelationBuilder` against its contract.

    Per entry of ``dtypes``, a copy converted to that dtype gets random source
    and target maps in that dtype on its device, with ``requires_grad``; the
    correlation must follow their dtype and device, and every map and trainable
    parameter must get an existing, finite gradient.

    The first maps are at ``source_size`` / ``target_size``; with several maps the
    last is at half that size, as a coarser backbone stage would be.

    Args:
        builder: The component.
        in_channels: Channels of each feature map; default ``builder.in_channels``
            (the value the matcher injected).
        source_size: ``(Hs, Ws)`` of the finest source map.
        target_size: ``(Ht, Wt)`` of the finest target map.
        grid: Expected ``(Hs, Ws, Ht, Wt)`` of the output; ``None`` accepts any.
        batch: Number of pairs ``B``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.
        TypeError: If ``in_channels`` is neither given nor set on the builder.
    """
    role = 'CorrelationBuilder'
    channels = list(in_channels if in_channels is not None else _injected(builder, 'in_channels'))
    src_sizes, trg_sizes = _map_sizes(source_size, len(channels)), _map_sizes(target_size,
                                                                             len(channels))
    for net, dtype in _copies(builder, CorrelationBuilder, dtypes):
        device = _device(net)
        src = [_random((batch, c, *s), dtype, device, seed + i)
               for i, (c, s) in enumerate(zip(channels, src_sizes))]
        trg = [_random((batch, c, *s), dtype, device, seed + 100 + i)
               for i, (c, s) in enumerate(zip(channels, trg_sizes))]
        out = net(src, trg)
        _check_output(out, (batch, net.out_channels, *(grid or (None,) * 4)), 'B L Hs Ws Ht Wt',
                      role, net, src[0])
        _check_gradients(net, role, [out], src + trg, seed)


def check_refiner(refiner: Refiner, in_channels: int | None = None,
                  grid: tuple[int, int, int, int] = (3, 4, 2, 3), batch: int = 2,
                  dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.Refiner` against its contract.

    Per entry of ``dtypes``, a copy of the refiner converted to that dtype gets
    a random non-negative correlation ``(B, L, Hs, Ws, Ht, Wt)`` in that dtype on
    the refiner's device, with ``requires_grad``. The output must be ``(B,
    out_channels, Hs, Ws, Ht, Wt)``, finite, in the correlation's dtype and on its
    device, and one backward pass must give the correlation and every trainable
    parameter an existing, finite gradient (zero is allowed; see the module's
    notes on dtypes and gradients). A refiner needs no cast for its own
    parameters and buffers.

    Also checks every layer of :meth:`~corrkit.models.base.Refiner.attention_layers`
    is a :class:`~corrkit.layers.Attention`, and every entry of
    :meth:`~corrkit.models.base.Refiner.convolution_kernels` a kernel tensor.

    Args:
        refiner: The component.
        in_channels: Correlation channels ``L``; default ``refiner.in_channels``.
        grid: ``(Hs, Ws, Ht, Wt)`` of the test correlation.
        batch: Number of pairs ``B``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.
        TypeError: If ``in_channels`` is neither given nor set on the refiner.

    Examples:
        >>> from corrkit.models.refiners import NCNetRefiner
        >>> check_refiner(NCNetRefiner(in_channels=2, channels=(4, 1), kernel_sizes=(3, 3)))
    """
    role = 'Refiner'
    channels = in_channels if in_channels is not None else _injected(refiner, 'in_channels')
    for net, dtype in _copies(refiner, Refiner, dtypes):
        corr = _random((batch, channels, *grid), dtype, _device(net), seed, positive=True)
        out = net(corr)
        _check_output(out, (batch, net.out_channels, *grid), "B L' Hs Ws Ht Wt", role, net, corr)
        _check_gradients(net, role, [out], [corr], seed)
    for layer in refiner.attention_layers():
        if not isinstance(layer, Attention):
            raise _fail(refiner, role, f'attention_layers() returned a {type(layer).__name__}, '
                                       f'not a corrkit.layers.Attention')
    for weight in refiner.convolution_kernels():
        if not isinstance(weight, Tensor) or weight.dim() < 3:
            got = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
            raise _fail(refiner, role, f'convolution_kernels() returned {got}, not a kernel '
                                       f'(C_out, C_in, *kernel_size)')


def check_head(head: FlowHead, in_channels: int = 1,
               grid: tuple[int, int, int, int] = (3, 4, 5, 6), batch: int = 2,
               dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.FlowHead` against its contract.

    Probabilities must sum to one over the target cells and the predicted
    targets (``source_grid + flow``) must lie in the normalised target frame.
    Per entry of ``dtypes``, a copy converted to that dtype reads a random
    correlation in that dtype on its device; flow and probabilities must follow
    its dtype and device, and the flow's gradient must reach the correlation and
    every trainable parameter (existing and finite).

    Args:
        head: The component.
        in_channels: Channels ``L'`` of the refined correlation (the shipped heads
            read one).
        grid: ``(Hs, Ws, Ht, Wt)`` of the test correlation.
        batch: Number of pairs ``B``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.
    """
    role = 'FlowHead'
    hs, ws, ht, wt = grid
    for net, dtype in _copies(head, FlowHead, dtypes):
        f = net.upsample_factor
        corr = _random((batch, in_channels, *grid), dtype, _device(net), seed, positive=True)
        pred = net(corr)
        if not isinstance(pred, FlowPrediction):
            raise _fail(net, role, f'expected a FlowPrediction, got {type(pred).__name__}')
        _check_output(pred.flow, (batch, 2, hs * f, ws * f), 'B 2 Hf Wf', role, net, corr)
        _check_output(pred.probs, (batch, hs * f, ws * f, ht * f, wt * f), 'B Hf Wf Ht Wt',
                      role, net, corr)
        total = pred.probs.sum((-1, -2))
        if not torch.allclose(total, torch.ones_like(total), atol=1e-4):
            raise _fail(net, role, f'probabilities sum to {total.min().item():.4g} .. '
                                   f'{total.max().item():.4g} over target cells, not to one')
        reach = flow_to_target(pred.flow).abs().max().item()
        if reach > 1 + 1e-4:
            raise _fail(net, role, f'a predicted target lies at {reach:.4g} in normalised '
                                   f'coordinates, outside the target frame [-1, 1]')
        _check_gradients(net, role, [pred.flow], [corr], seed)


def check_keypoint_head(head: KeypointHead, num_keypoints: int = 3,
                        grid: tuple[int, int] = (5, 7), batch: int = 2,
                        dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.KeypointHead` against its contract.

    On random similarities in ``[-1, 1]`` (cosine scores) the head must return a
    :class:`~corrkit.models.base.KeypointPrediction` with keypoints inside the
    normalised target frame and confidences in ``[0, 1]``, both in the
    similarity's dtype and device (per entry of ``dtypes``, on a copy converted
    to that dtype). Every trainable parameter must get an existing, finite
    gradient from ``kps`` and ``confidence``; unless the head declares
    ``differentiable = False`` (a hard argmax), the similarity must also get a
    finite gradient through ``kps`` alone that is not zero everywhere (a zero
    there would leave the backbone nothing to learn from). A single clear peak
    in the top-right cell must be predicted right of and above the grid's
    centre, which catches ``(y, x)`` swaps.

    Args:
        head: The component.
        num_keypoints: Keypoints ``K`` per pair.
        grid: ``(Ht, Wt)`` of the test similarity.
        batch: Number of pairs ``B``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.

    Shape:
        - similarity: ``(B, K, Ht, Wt)``
        - checked output: kps ``(B, K, 2)``, confidence ``(B, K)``

    Examples:
        >>> from corrkit.models.keypoint_heads import WindowSoftArgmaxHead
        >>> check_keypoint_head(WindowSoftArgmaxHead(window=3))
    """
    role = 'KeypointHead'
    size = (batch, num_keypoints, *grid)
    for net, dtype in _copies(head, KeypointHead, dtypes):
        device = _device(net)
        sim = _random(size, dtype, device, seed, positive=True, requires_grad=False)
        sim = (sim * 2 - 1).requires_grad_()
        pred = net(sim)
        if not isinstance(pred, KeypointPrediction):
            raise _fail(net, role, f'expected a KeypointPrediction, got {type(pred).__name__}')
        _check_output(pred.kps, (batch, num_keypoints, 2), 'B K 2', role, net, sim)
        _check_output(pred.confidence, (batch, num_keypoints), 'B K', role, net, sim)
        reach = pred.kps.abs().max().item()
        if reach > 1 + 1e-4:
            raise _fail(net, role, f'a predicted keypoint lies at {reach:.4g} in normalised '
                                   f'coordinates, outside the target frame [-1, 1]')
        low, high = pred.confidence.min().item(), pred.confidence.max().item()
        if low < 0 or high > 1:
            raise _fail(net, role, f'confidences span {low:.4g} .. {high:.4g}, not inside [0, 1]')
        if net.differentiable:  # declared on KeypointHead; an argmax head sets it False
            _check_keypoint_gradient(net, role, pred.kps, sim, seed)
        _check_gradients(net, role, [pred.kps, pred.confidence], [], seed)
        peak = torch.full(size, -1.0, dtype=dtype, device=device)
        peak[..., 0, -1] = 1.0  # top-right cell: x = +1, y = -1
        kps = net(peak).kps.detach()
        sides = [('x', kps[..., 0], grid[1]), ('y', -kps[..., 1], grid[0])]
        wrong = [axis for axis, coord, n in sides if n > 1 and not bool((coord > 0).all())]
        if wrong:
            raise _fail(net, role, f'a single peak in the top-right cell (x = +1, y = -1) is '
                                   f'predicted on the wrong side in {" and ".join(wrong)} '
                                   f'(keypoints are (x, y), normalised); got {kps[0, 0].tolist()}')


def _check_keypoint_gradient(net: nn.Module, role: str, kps: Tensor, sim: Tensor,
                             seed: int) -> None:
    """A differentiable head's keypoints must carry a finite, non-zero gradient to the input."""
    hint = ('; a head whose keypoints are not differentiable declares '
            '`differentiable = False`')
    if not kps.requires_grad:
        raise _fail(net, role, f'no gradient reaches the similarity through kps{hint}')
    generator = torch.Generator().manual_seed(seed)
    projection = torch.randn(kps.shape, generator=generator).to(kps)
    (grad,) = torch.autograd.grad((kps * projection).sum(), sim, retain_graph=True,
                                  allow_unused=True)
    if grad is None or not bool(grad.abs().sum() > 0):
        raise _fail(net, role, f'no gradient reaches the similarity through kps{hint}')
    if not torch.isfinite(grad).all():
        raise _fail(net, role, 'the gradient of the similarity through kps has NaN or infinite '
                               'entries')


def check_attention(attn: Attention, grid: tuple[int, int, int, int] = (2, 2, 2, 2),
                    batch: int = 2, dtypes: Sequence[torch.dtype] = DTYPES,
                    seed: int = 0) -> None:
    """Check a built :class:`~corrkit.layers.Attention` against its contract.

    Per entry of ``dtypes``, a copy converted to that dtype gets random tokens
    ``(B, T, D)`` in that dtype on its device, with ``requires_grad``; the output
    must be ``(B, T, D)`` in their dtype and device, and the tokens and every
    trainable parameter must get an existing, finite gradient. When
    :meth:`~corrkit.layers.Attention.pairwise_queries_keys` returns a map,
    its queries and keys must be finite ``(B, heads, T, D_h)`` tensors.

    Args:
        attn: The component.
        grid: The 4D grid the ``T`` test tokens flatten.
        batch: Number of pairs ``B``.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.
    """
    role = 'Attention'
    tokens = math.prod(grid)
    for net, dtype in _copies(attn, Attention, dtypes):
        x = _random((batch, tokens, net.embed_dims), dtype, _device(net), seed)
        out = net(x, tuple(grid))
        _check_output(out, (batch, tokens, net.embed_dims), 'B T D', role, net, x)
        _check_gradients(net, role, [out], [x], seed)
        pair = net.pairwise_queries_keys(x, tuple(grid))
        if pair is None:
            continue
        q, k = pair
        check_shape(q, (batch, None, tokens, None), 'B heads T D_h', role, net)
        check_shape(k, tuple(q.shape), 'B heads T D_h', role, net)
        if not (torch.isfinite(q).all() and torch.isfinite(k).all()):
            raise _fail(net, role, 'pairwise_queries_keys returned NaN or infinite entries')


def check_loss(loss: nn.Module, batch: int = 3, num_keypoints: int = 4,
               dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built loss (registry ``LOSSES``) against the contract of its kind.

    A :class:`~corrkit.models.base.SimilarityLoss` is checked by
    :func:`check_similarity_loss`. Any other loss is a keypoint loss:
    ``loss(pred, target, valid)`` must return a finite scalar in ``pred``'s dtype
    and device (per entry of ``dtypes``, on a copy converted to that dtype)
    whose gradient to ``pred`` is zero at every masked keypoint and not zero at
    all the valid ones together, and stay finite for a batch without any valid
    keypoint.

    Args:
        loss: The component.
        batch: Number of pairs ``B`` (at least 2: one pair has no valid keypoint).
        num_keypoints: Keypoints ``K`` per pair.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.

    Shape:
        - pred, target: ``(B, K, 2)`` normalised coordinates
        - valid: ``(B, K)`` bool
    """
    if isinstance(loss, SimilarityLoss):  # the declared kind, not a probe of its signature
        check_similarity_loss(loss, batch=batch, num_keypoints=num_keypoints, dtypes=dtypes,
                              seed=seed)
        return
    role = 'loss'
    valid = _loss_mask(batch, num_keypoints)
    for fn, dtype in ((copy.deepcopy(loss).to(dtype), dtype) for dtype in dtypes):
        device = _device(fn)
        pred = _random((batch, num_keypoints, 2), dtype, device, seed)
        target = _random((batch, num_keypoints, 2), dtype, device, seed + 1).detach()
        value = fn(pred, target, valid.to(device))
        _check_output(value, (), '', role, fn, pred)
        (grad,) = torch.autograd.grad(value, pred)
        if grad[~valid].abs().sum() != 0:
            raise _fail(fn, role, 'masked keypoints get a gradient')
        if grad[valid].abs().sum() == 0:
            raise _fail(fn, role, 'no gradient reaches the valid keypoints')
        empty = fn(pred, target, torch.zeros_like(valid).to(device))
        _check_output(empty, (), '', role, fn, pred)


def check_similarity_loss(loss: SimilarityLoss, batch: int = 3, num_keypoints: int = 4,
                          grid: tuple[int, int] = (5, 6),
                          dtypes: Sequence[torch.dtype] = DTYPES, seed: int = 0) -> None:
    """Check a built :class:`~corrkit.models.base.SimilarityLoss` against its contract.

    ``loss(similarity, pred, target, valid)`` must return a finite scalar whose
    gradient (to the similarity and to ``pred.kps``) is zero at masked keypoints
    and reaches the valid ones; it must take ``pred=None``, and without any
    valid keypoint return a finite scalar still connected to the graph.

    Args:
        loss: The component.
        batch: Number of pairs ``B`` (at least 2: one pair has no valid keypoint).
        num_keypoints: Keypoints ``K`` per pair.
        grid: ``(Ht, Wt)`` of the test similarity.
        dtypes: Run once per dtype.
        seed: Seed of the random inputs.

    Raises:
        ContractError: Naming the class and what broke.

    Shape:
        - similarity: ``(B, K, Ht, Wt)`` scores in ``[-1, 1]``
        - pred: kps ``(B, K, 2)``, confidence ``(B, K)``
        - target: ``(B, K, 2)`` normalised coordinates
        - valid: ``(B, K)`` bool

    Examples:
        >>> from corrkit.models.losses import KeypointCrossEntropyLoss
        >>> check_similarity_loss(KeypointCrossEntropyLoss(regression_weight=0.5))
    """
    role = 'SimilarityLoss'
    valid = _loss_mask(batch, num_keypoints)
    for fn, dtype in _copies(loss, SimilarityLoss, dtypes):
        device = _device(fn)
        mask = valid.to(device)

        def uniform(shape, offset, requires_grad):  # in [-1, 1], like cosines and keypoints
            x = _random(shape, dtype, device, seed + offset, positive=True, requires_grad=False)
            return (x * 2 - 1).requires_grad_(requires_grad)

        sim = uniform((batch, num_keypoints, *grid), 0, True)
        kps = uniform((batch, num_keypoints, 2), 1, True)
        target = uniform((batch, num_keypoints, 2), 2, False)
        pred = KeypointPrediction(kps, (kps.detach()[..., 0] + 1) / 2)
        value = fn(sim, pred, target, mask)
        _check_output(value, (), '', role, fn, sim)
        grads = torch.autograd.grad(value, [sim, kps], allow_unused=True)
        grads = [g.flatten(2) if g is not None else torch.zeros(batch, num_keypoints, 1).to(sim)
                 for g in grads]
        if any(g[~mask].abs().sum() != 0 for g in grads):
            raise _fail(fn, role, 'masked keypoints get a gradient')
        if all(g[mask].abs().sum() == 0 for g in grads):
            raise _fail(fn, role, 'no gradient reaches the valid keypoints (neither through '
                                  'the similarity nor through pred.kps)')
        _check_output(fn(sim, None, target, mask), (), '', role, fn, sim)
        empty = fn(sim, pred, target, torch.zeros_like(mask))
        _check_output(empty, (), '', role, fn, sim)
        if not empty.requires_grad:
            raise _fail(fn, role, 'without any valid keypoint the loss is not connected to the '
                                  'graph, so a backward pass on such a batch fails')


def _loss_mask(batch: int, num_keypoints: int) -> Tensor:
    """Validity for loss checks: pair 0 half valid, pair 1 none valid, the rest all valid."""
    valid = torch.ones(batch, num_keypoints, dtype=torch.bool)
    valid[0, num_keypoints // 2:] = False
    valid[1] = False
    return valid


def _map_sizes(size: tuple[int, int], count: int) -> list[tuple[int, int]]:
    """``count`` map sizes: all at ``size`` but the last, at half of it (when ``count > 1``)."""
    half = tuple((s + 1) // 2 for s in size)
    return [size] * (count - 1) + [half if count > 1 else size]


def _injected(module: nn.Module, name: str):
    try:
        return getattr(module, name)
    except AttributeError:
        raise TypeError(f'{type(module).__name__} has no {name} attribute; pass {name}= to '
                        f'the checker') from None


@torch.no_grad()
def check_matcher(model: nn.Module, image_sizes: Sequence[tuple[int, int]] = ((37, 53), (64, 48)),
                  num_points: int = 5, atol: float = 1e-4) -> None:
    """Check a matcher against the :class:`~corrkit.models.base.Matcher` interface.

    On random images (of the model's input size, with frames of ``image_sizes``,
    one pair per entry) in eval mode: :meth:`encode` keeps one frame per image
    and gives each image the maps it gets when encoded alone (nothing depends
    on the other images); :meth:`match_points` returns finite points in the
    images' pixels, confidences in ``[0, 1]``, non-negative maps, the flow of
    :meth:`dense_flow`, and the grid's rows after the points; a matcher that
    ``mirrors_source`` refuses sources encoded without their mirrored maps.

    The matcher runs as it is (no copy, no dtype conversion) on its device, on
    float32 images, under ``no_grad``; its ``train``/``eval`` mode is restored
    afterwards.

    Args:
        model: A matcher (a :class:`~corrkit.models.base.Matcher` with a
            ``data_preprocessor``).
        image_sizes: ``(H, W)`` of the images as the frames say they were given.
        num_points: Source points per pair.
        atol: Tolerance of the encode-alone comparison.

    Raises:
        ContractError: Naming the class and what broke.
    """
    if not isinstance(model, Matcher):
        raise ContractError(f'{describe(model)} is not a corrkit.models.base.Matcher; '
                            f'subclass it (or FeatureMatcher) to implement that interface')
    role = 'Matcher'
    was_training = model.training
    model.eval()
    try:
        src, trg = _encoded_pair(model, image_sizes, role, atol)
        points = torch.stack([torch.rand(num_points, 2, generator=torch.Generator().manual_seed(i))
                              * torch.tensor([w - 1.0, h - 1.0]) for i, (h, w)
                              in enumerate(image_sizes)]).to(src.maps[0].device)
        if model.mirrors_source:
            try:
                model.match_points(src.without_mirrored(), points, trg)
            except ValueError:
                pass
            else:
                raise _fail(model, role, 'mirrors_source is set but match_points accepted '
                                         'sources encoded without their mirrored maps')
        out = model.match_points(src, points, trg, maps=True, flow=True)
        _check_matches(model, out, points, num_points, image_sizes[::-1], role)
        last = model.match_points(src[-1], points[-1:], trg[-1])
        if not torch.allclose(last.trg_kps, out.trg_kps[-1:], atol=atol, rtol=1e-4):
            raise _fail(model, role, 'pair i of a batch must match source i with target i, '
                                     'as alone')
        flow = model.dense_flow(src, trg)
        if flow.shape != out.flow.shape or not torch.allclose(flow, out.flow, atol=atol):
            raise _fail(model, role, 'dense_flow differs from match_points(..., flow=True).flow')
        cells = flow.shape[-2] * flow.shape[-1]
        both = model.match_points(src, points, trg, grid=True)
        grid = model.match_points(src, None, trg)
        if both.trg_kps.shape[1] != num_points + cells or grid.trg_kps.shape[1] != cells:
            raise _fail(model, role, f'grid=True must add the {cells} cells of the flow grid '
                                     f'after the points, and points=None match them alone')
        if not torch.allclose(both.trg_kps[:, num_points:], grid.trg_kps, atol=atol):
            raise _fail(model, role, 'the grid rows of grid=True differ from points=None')
    finally:
        model.train(was_training)


def _encoded_pair(model: nn.Module, image_sizes: Sequence[tuple[int, int]], role: str,
                  atol: float) -> tuple[ImageFeatures, ImageFeatures]:
    """Encode random sources and targets with frames of ``image_sizes``; check the result."""
    h, w = model.input_size
    device = _device(model)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2 * len(image_sizes), 3, h, w, generator=generator).to(device)
    # the targets' frames differ from the sources': a matcher that mixes them up fails
    frames = ([ImageFrame(tuple(size), (h, w)) for size in image_sizes]
              + [ImageFrame(tuple(size), (h, w)) for size in reversed(image_sizes)])
    features = model.encode(images, frames, mirrored=model.mirrors_source)
    if not isinstance(features, ImageFeatures) or len(features) != len(images):
        raise _fail(model, role, f'encode must return ImageFeatures of {len(images)} images, '
                                 f'got {type(features).__name__}')
    if list(features.frames) != frames:
        raise _fail(model, role, 'encode must keep the frames it is given, in order')
    if model.mirrors_source and features.mirrored is None:
        raise _fail(model, role, 'mirrors_source is set but encode(mirrored=True) gave no '
                                 'mirrored maps')
    alone = model.encode(images[-1:], frames[-1:])
    for i, (got, ref) in enumerate(zip(features.maps, alone.maps)):
        if not torch.allclose(got[-1:], ref, atol=atol, rtol=1e-4):
            raise _fail(model, role, f'map {i} of an image depends on the images encoded '
                                     f'with it')
    n = len(image_sizes)
    return features[:n], features[n:].without_mirrored()


def _check_matches(model: nn.Module, out: PointMatches, points: Tensor, num_points: int,
                   image_sizes: Sequence[tuple[int, int]], role: str) -> None:
    b = len(image_sizes)
    if not isinstance(out, PointMatches):
        raise _fail(model, role, f'match_points must return PointMatches, got '
                                 f'{type(out).__name__}')
    check_shape(out.src_kps, (b, num_points, 2), 'B N 2', role, model)
    check_shape(out.trg_kps, (b, num_points, 2), 'B N 2', role, model)
    check_shape(out.confidence, (b, num_points), 'B N', role, model)
    if not torch.allclose(out.src_kps, points):
        raise _fail(model, role, 'src_kps must be the points given')
    if not torch.isfinite(out.trg_kps).all():
        raise _fail(model, role, 'trg_kps must be finite')
    if not ((out.confidence >= 0) & (out.confidence <= 1)).all():
        raise _fail(model, role, 'confidence must lie in [0, 1]')
    if out.maps is None or out.maps.dim() != 4 or tuple(out.maps.shape[:2]) != (b, num_points) \
            or (out.maps < 0).any():
        raise _fail(model, role, 'maps=True must give (B, N, Ht, Wt) non-negative maps')
    if out.flow is None or out.flow.dim() != 4 or tuple(out.flow.shape[:2]) != (b, 2):
        raise _fail(model, role, 'flow=True must give a (B, 2, Hf, Wf) flow')
    sizes = torch.tensor([[w, h] for h, w in image_sizes], dtype=out.trg_kps.dtype,
                         device=out.trg_kps.device)[:, None]
    # a target point lies within the target's pixel area, give or take the flow's reach
    if ((out.trg_kps < -0.5 - sizes) | (out.trg_kps > 2 * sizes)).any():
        raise _fail(model, role, 'trg_kps must be pixels of the target images as given')
