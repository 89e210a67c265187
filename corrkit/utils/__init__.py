"""Small helpers shared across corrkit."""
from .shape_check import ContractError, check_shape, describe

__all__ = ['ContractError', 'check_shape', 'describe']
from .config import import_plugins, load_config  # noqa: E402

__all__ += ['import_plugins', 'load_config']
