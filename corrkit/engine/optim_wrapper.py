"""Optimiser wrappers that never step on a non-finite loss."""
from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ..errors import NonFiniteLossError
from ..registry import RUNTIME_REGISTRIES

OPTIM_WRAPPERS = RUNTIME_REGISTRIES['optim_wrapper']

#: What a wrapper does with a non-finite loss.
POLICIES = ('raise', 'skip')

#: Name of the skip counter in mmengine's message hub (logged with the losses).
SKIP_COUNTER = 'train/nonfinite_skips'



class FiniteLossGuard:
    """Check the loss before ``update_params`` backpropagates and steps.

    A NaN or infinite loss either stops training with :class:`NonFiniteLossError`
    (``nonfinite='raise'``, the default) or drops the batch: no backward pass, no
    optimiser step, gradients cleared (``nonfinite='skip'``). Skips are counted as
    ``train/nonfinite_skips`` in the log; past ``max_skips`` of them, training stops
    as with ``'raise'``. In distributed training the ranks agree first: if any rank
    has a non-finite loss, every rank skips or stops.

    When training stops, the exception is raised before the step, so the model
    and every checkpoint already written keep their last finite values; the
    message names the last checkpoint to resume from.

    Args:
        nonfinite: ``'raise'`` or ``'skip'``.
        max_skips: With ``'skip'``, the most batches to drop before stopping;
            ``None`` for no limit.

    Other arguments go to the wrapped optimiser wrapper.
    """

    def __init__(self, *args, nonfinite: str = 'raise', max_skips: int | None = None,
                 **kwargs):
        if nonfinite not in POLICIES:
            raise ValueError(f'nonfinite must be one of {POLICIES}, got {nonfinite!r}')
        super().__init__(*args, **kwargs)
        self.nonfinite = nonfinite
        self.max_skips = max_skips
        self.skipped = 0

    def update_params(self, loss: torch.Tensor, step_kwargs: dict | None = None,
                      zero_kwargs: dict | None = None) -> None:
        """Backpropagate and step as the wrapped class does, if ``loss`` is finite."""
        if loss_is_finite(loss):
            super().update_params(loss, step_kwargs, zero_kwargs)
            return
        hub = MessageHub.get_current_instance()
        where = f"epoch {hub.get_info('epoch', -1) + 1}, iteration {hub.get_info('iter', -1) + 1}"
        if self.nonfinite == 'raise' or (self.max_skips is not None
                                         and self.skipped >= self.max_skips):
            last = hub.get_info('last_ckpt')
            limit = (f' after {self.skipped} skipped batches (max_skips={self.max_skips})'
                     if self.nonfinite == 'skip' else '')
            raise NonFiniteLossError(
                f'non-finite training loss ({loss.item()}) at {where}{limit}; training '
                f'stopped before stepping, so no weights were changed by it. '
                + (f'The last checkpoint, {last}, is intact: resume from it with --resume '
                   if last else 'No checkpoint was written yet. ')
                + 'after lowering the learning rate or checking the data, or set '
                  "optim_wrapper.nonfinite='skip' to drop such batches")
        self.skipped += 1
        self.zero_grad()
        hub.update_scalar(SKIP_COUNTER, self.skipped)
        print_log(f'non-finite training loss at {where}: batch skipped '
                  f'({self.skipped} so far)', logger='current', level=logging.WARNING)


def loss_is_finite(loss: torch.Tensor) -> bool:
    """Whether ``loss`` is finite on every process (one all-reduce when distributed)."""
    finite = torch.isfinite(loss.detach()).all()
    if dist.is_available() and dist.is_initialized():
        flag = finite.to(torch.int32).reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())
    return bool(finite)


@OPTIM_WRAPPERS.register_module()
class GuardedOptimWrapper(FiniteLossGuard, OptimWrapper):
    """mmengine's ``OptimWrapper`` behind a :class:`FiniteLossGuard`."""


@OPTIM_WRAPPERS.register_module()
class GuardedAmpOptimWrapper(FiniteLossGuard, AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` behind a :class:`FiniteLossGuard` (``--amp``)."""
