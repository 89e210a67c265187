"""The token-mixer contract, and the checks every contract of corrkit is enforced with.

Every contract class of corrkit (:class:`Attention` here, the roles of
:mod:`corrkit.models.base`) lists in ``declared_attributes`` the attributes a
subclass must set in ``__init__``. :class:`DeclaredAttributesMeta` checks them
right after construction, so a component that forgets one fails when it is built,
with a :class:`~corrkit.errors.ContractError` naming its class and the attribute,
instead of with an ``AttributeError`` deep inside a later forward. At run time the
matchers check each role's output with :func:`check_shape` (once, at the Matcher
boundary), and :mod:`corrkit.testing` checks a component's whole contract; every
message names the component with :func:`describe`.
"""
from __future__ import annotations

import inspect
from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar, Sequence

from torch import Tensor, nn

from ..errors import ContractError

#: How :meth:`Attention.pairwise_queries_keys` may build the map of an attention
#: without pairwise scores (additive attention); see :mod:`corrkit.analysis.nonlocality`.
PAIRWISE_SCORES = ('paper', 'relative')


class DeclaredAttributesMeta(ABCMeta):
    """Metaclass of the contract ABCs: checks ``declared_attributes`` after ``__init__``.

    The check runs once per construction, after the outermost ``__init__`` has
    returned (a subclass may set an attribute after calling ``super().__init__()``).

    Raises:
        ContractError: When the built object lacks a declared attribute; the
            message names the class, the role and the attribute.

    Examples:
        >>> from torch import nn
        >>> class Role(nn.Module, metaclass=DeclaredAttributesMeta):
        ...     declared_attributes = ('size',)
        >>> class Forgetful(Role):
        ...     pass
        >>> Forgetful()
        Traceback (most recent call last):
        ...
        corrkit.errors.ContractError: Forgetful (corrkit.layers.base) breaks the Role contract: ...
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        missing = [name for name in getattr(cls, 'declared_attributes', ())
                   if not _has_attribute(obj, name)]
        if missing:
            role = contract_role(cls)
            names = ', '.join(repr(name) for name in missing)
            raise ContractError(
                f'{describe(obj)} breaks the {role.__name__} contract: __init__ did not set '
                f'the declared attribute{"s" if len(missing) > 1 else ""} {names} (set '
                f'self.{missing[0]} = ... in __init__; {role.__name__}.declared_attributes '
                f'lists what the role requires)')
        return obj

    @property
    def __signature__(cls) -> inspect.Signature:
        # inspect.signature(cls) would otherwise report __call__'s (*args, **kwargs),
        # hiding the constructor's schema from the registry's key checks
        sig = inspect.signature(cls.__init__)
        return sig.replace(parameters=list(sig.parameters.values())[1:])


def _has_attribute(obj: Any, name: str) -> bool:
    try:
        getattr(obj, name)
    except AttributeError:
        return False
    return True


def contract_role(cls: type) -> type:
    """The class that declares ``cls``'s ``declared_attributes``: its role (``Refiner``, ...).

    Examples:
        >>> from corrkit.layers import SoftmaxAttention
        >>> contract_role(SoftmaxAttention).__name__
        'Attention'
    """
    for klass in reversed(cls.__mro__):
        if 'declared_attributes' in vars(klass):
            return klass
    return cls


def describe(component: nn.Module) -> str:
    """``'ClassName (module.path)'``: how contract errors name a component."""
    cls = type(component)
    return f'{cls.__name__} ({cls.__module__})'


def check_shape(tensor: object, expected: Sequence[int | None], names: str, role: str,
                component: nn.Module) -> None:
    """Raise :class:`~corrkit.errors.ContractError` unless ``tensor`` has the expected shape.

    Args:
        tensor: What the component returned.
        expected: Expected sizes; ``None`` accepts any size of that dimension.
        names: Names of the dimensions, e.g. ``'B L Hs Ws Ht Wt'``.
        role: The role whose contract applies, e.g. ``'Refiner'``.
        component: The component that produced ``tensor``; the error names its class.

    Raises:
        ContractError: On a non-tensor, a wrong rank or a wrong size.

    Examples:
        >>> import torch
        >>> check_shape(torch.zeros(2, 3), (2, 4), 'B C', 'Neck', nn.Identity())
        Traceback (most recent call last):
        ...
        corrkit.errors.ContractError: Identity (...) breaks the Neck contract: ... got (2, 3)
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


class Attention(nn.Module, metaclass=DeclaredAttributesMeta):
    """A token mixer over the matches of a 4D grid (registry ``ATTENTIONS``).

    Subclasses set ``embed_dims`` (the token size) in ``__init__`` and implement
    :meth:`forward`. Attentions that can say whom each match attends to also
    implement :meth:`pairwise_queries_keys`; the nonlocality analysis
    (:mod:`corrkit.analysis.nonlocality`) uses nothing else.

    Shape:
        - x: ``(B, T, D)`` with ``T = Hs * Ws * Ht * Wt`` (row-major over ``grid``)
          and ``D = embed_dims``
        - grid: ``(Hs, Ws, Ht, Wt)``
        - output: ``(B, T, D)``
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ('embed_dims',)
    embed_dims: int

    @abstractmethod
    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Mix the tokens of ``x``, which flatten ``grid``."""

    def pairwise_queries_keys(self, x: Tensor, grid: tuple[int, int, int, int],
                              scores: str = 'paper') -> tuple[Tensor, Tensor] | None:
        """The scaled queries and keys whose softmax is the pairwise attention map.

        The map is ``A = softmax_k(queries · keys^T)`` per head; it is never formed
        here. The default returns ``None``: the layer has no pairwise map between
        matches (Linformer attends to projected summaries; a convolution has none).

        Args:
            x: The layer's input ``(B, T, D)``.
            grid: The grid ``x`` flattens.
            scores: One of :data:`PAIRWISE_SCORES`, for layers without pairwise
                scores whose map is reconstructed (additive attention); layers with
                a softmax map ignore it.

        Returns:
            ``(queries, keys)``, ``(B, heads, T, D_h)`` each with the scale folded
            into the queries, or ``None``.
        """
        return None


__all__ = ['Attention', 'DeclaredAttributesMeta', 'PAIRWISE_SCORES', 'check_shape',
           'contract_role', 'describe']
