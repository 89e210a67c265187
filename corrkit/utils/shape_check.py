"""Contract checks at the Matcher boundary: one per role output."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..errors import ContractError


def describe(component: nn.Module) -> str:
    """``'ClassName (module.path)'``: how contract errors name a component."""
    cls = type(component)
    return f'{cls.__name__} ({cls.__module__})'


def check_shape(tensor: object, expected: Sequence[int | None], names: str, role: str,
                component: nn.Module) -> None:
    """Raise :class:`ContractError` unless ``tensor`` has the expected shape.

    Args:
        tensor: What the component returned.
        expected: Expected sizes; ``None`` accepts any size of that dimension.
        names: Names of the dimensions, e.g. ``'B L Hs Ws Ht Wt'``.
        role: The role whose contract applies, e.g. ``'Refiner'``.
        component: The component that produced ``tensor``; the error names its class.

    Raises:
        ContractError: On a non-tensor, a wrong rank or a wrong size.
    """
    dims = names.split()
    want = '(' + ', '.join(d if s is None else f'{d}={s}' for d, s in zip(dims, expected)) + ')'
    if not isinstance(tensor, Tensor):
        raise ContractError(f'{describe(component)} breaks the {role} contract: expected a tensor '
                            f'of shape {want}, got {type(tensor).__name__}')
    bad = tensor.dim() != len(expected) or any(
        s is not None and s != actual for s, actual in zip(expected, tensor.shape))
    if bad:
        raise ContractError(f'{describe(component)} breaks the {role} contract: expected shape '
                            f'{want}, got {tuple(tensor.shape)}')
