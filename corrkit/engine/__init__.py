"""Runner-side pieces: hooks that mmengine's Runner calls during training and testing."""
from .atomic_checkpoints import AtomicLocalBackend, atomic_write, newest_readable_checkpoint
from .checkpoint_hook import SafeCheckpointHook, check_state_dict_keys
from .epoch_seed_hook import EpochSeedHook
from .optim_wrapper import (GuardedAmpOptimWrapper, GuardedOptimWrapper, NonFiniteLossError,
                            loss_is_finite)

__all__ = ['AtomicLocalBackend', 'EpochSeedHook', 'GuardedAmpOptimWrapper', 'GuardedOptimWrapper',
           'NonFiniteLossError', 'SafeCheckpointHook', 'atomic_write', 'check_state_dict_keys',
           'loss_is_finite', 'newest_readable_checkpoint']
