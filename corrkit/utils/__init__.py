"""Small helpers shared across corrkit."""
from .config import import_plugins, load_config
from .shape_check import ContractError, check_shape, describe

__all__ = ['ContractError', 'check_shape', 'describe', 'import_plugins', 'load_config']
