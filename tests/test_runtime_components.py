"""Every registered hook and function, built and called against its contract."""
import random

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook

from corrkit.registry import FUNCTIONS, HOOKS


def names(registry):
    registry.import_from_location()
    return sorted(registry.module_dict)


@pytest.mark.parametrize('name', names(HOOKS))
def test_every_hook_builds_with_defaults_and_is_an_mmengine_hook(name):
    hook = HOOKS.build(dict(type=name))
    assert isinstance(hook, Hook)
    assert hook.priority in ('HIGHEST', 'VERY_HIGH', 'HIGH', 'ABOVE_NORMAL', 'NORMAL',
                             'BELOW_NORMAL', 'LOW', 'VERY_LOW', 'LOWEST')


@pytest.mark.parametrize('name', names(FUNCTIONS))
def test_every_function_is_a_worker_init_fn(name):
    FUNCTIONS.get(name)(0)  # called with a worker id, as DataLoader calls it


def test_worker_seeding_follows_torchs_seed():
    from corrkit.datasets import seed_worker_from_torch

    def draws(torch_seed):
        torch.manual_seed(torch_seed)  # what PyTorch does in a worker (base seed + id)
        seed_worker_from_torch(0)
        return np.random.rand(), random.random()

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)  # a new epoch (new base seed) draws new augmentations


def test_epoch_seed_hook_makes_each_epoch_reproducible():
    from types import SimpleNamespace

    from corrkit.engine import EpochSeedHook
    hook = EpochSeedHook()

    def first_draw(epoch, before):
        torch.manual_seed(before)  # whatever happened before the epoch (validation, a resume)
        hook.before_train_epoch(SimpleNamespace(seed=0, epoch=epoch))
        return torch.rand(()).item()

    assert first_draw(3, before=1) == first_draw(3, before=2)
    assert first_draw(3, before=1) != first_draw(4, before=1)
