"""Runner-side pieces: hooks that mmengine's Runner calls during training and testing."""
from .atomic_checkpoints import AtomicLocalBackend, atomic_write, newest_readable_checkpoint
from .checkpoint_hook import SafeCheckpointHook, check_state_dict_keys
from .epoch_seed_hook import EpochSeedHook

__all__ = ['AtomicLocalBackend', 'EpochSeedHook', 'SafeCheckpointHook', 'atomic_write',
           'check_state_dict_keys', 'newest_readable_checkpoint']
