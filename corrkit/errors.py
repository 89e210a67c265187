"""Every exception class corrkit raises, in one place.

Each class subclasses the built-in exception a caller would already catch
(``ValueError`` for a bad value, ``KeyError`` for an unknown name, ...), so code
written against the built-ins keeps working. Some modules that raise them
re-export them under their old import paths (``corrkit.registry``,
``corrkit.models.base``, ...).

This module sits at the bottom of the package: it imports nothing from corrkit.

Examples:
    >>> from corrkit.errors import ContractError
    >>> issubclass(ContractError, RuntimeError)
    True
"""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotation only: the class is mmengine's
    from mmengine.registry import Registry

__all__ = [
    'CorrkitError', 'ContractError', 'ConfigConflictError', 'UnknownComponentError',
    'UnknownArgumentError', 'AttentionMemoryError', 'NonFiniteLossError', 'AnnotationError',
    'DownloadError', 'ChecksumError', 'DatasetNotFoundError', 'WeightsError', 'FusedKernelError',
]


class CorrkitError(Exception):
    """Base of the corrkit errors that have no closer built-in exception."""


class ContractError(RuntimeError):
    """A component broke its role's contract (a shape, a dtype, a declared attribute).

    The message names the component's class and what broke.
    """


class ConfigConflictError(ValueError):
    """A config repeats a size the matcher derives, with a different value."""


class UnknownComponentError(KeyError):
    """A config asked a registry for a ``type`` it does not hold.

    Args:
        registry: The registry that was searched.
        name: The unknown type name.
    """

    def __init__(self, registry: Registry, name: str):
        registry.import_from_location()
        known = sorted(registry.module_dict)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
        hint = (f'closest registered names: {", ".join(close)}'
                if close else f'registered names: {", ".join(known) or "(none)"}')
        self.registry_name = f'{registry.scope}::{registry.name}'
        self.name = name
        self.suggestions = close
        super().__init__(
            f"unknown type '{name}' in registry '{self.registry_name}'; {hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class UnknownArgumentError(TypeError):
    """A config passes a key that the component's constructor does not take.

    Args:
        cls: The component class.
        key: The unexpected key.
        params: The constructor's parameter names.
        hint: What to say instead of the closest names (e.g. a renamed key).
    """

    def __init__(self, cls: type, key: str, params: list[str], hint: str | None = None):
        if hint is None:
            close = difflib.get_close_matches(key, params, n=3, cutoff=0.4)
            hint = f'did you mean {", ".join(close)}?' if close else f'it takes {", ".join(params)}'
        self.key = key
        super().__init__(f"{cls.__name__} got an unexpected config key '{key}'; {hint}")


class AttentionMemoryError(MemoryError):
    """Softmax attention over this many tokens would exceed its memory budget."""


class NonFiniteLossError(RuntimeError):
    """A training loss was NaN or infinite; nothing was stepped with it."""


class AnnotationError(ValueError):
    """A missing or malformed annotation; the message names the file and the field."""


class DownloadError(RuntimeError):
    """A file could not be downloaded, verified or unpacked."""


class ChecksumError(DownloadError, ValueError):
    """A file's SHA-256 is not the one published for it: it is whole, and another file (or
    corrupt on disk). The message names the file, its digest and the expected one.

    It is a :class:`DownloadError` (the other checks of
    :func:`~corrkit.utils.download.verify_file` raise that) and a ``ValueError`` (the
    file's content is not the expected value), so code written against either keeps
    working; a caller that must tell a mismatch from a failed download catches this type.
    """


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not where it was expected and downloading was not allowed."""


class WeightsError(RuntimeError):
    """Published weights cannot be used: none are published, the file cannot be fetched, or
    it does not match its SHA-256 (then raised from a :class:`ChecksumError`). The message
    names the URL, the file and the cache path."""


class FusedKernelError(RuntimeError):
    """The refiner's fused CPU kernel could not be built or used: no C compiler, the
    compiler failed (the message has its command and output), no private folder to keep
    it in, or the library built fails its check, does not load or lacks a function. The
    refiner catches it, warns once and runs its PyTorch kernels for the rest of the
    process (:mod:`corrkit.layers.fused`)."""


#: Exceptions that mean "the user asked for something that cannot be done": a missing
#: file, a bad value or key, an unreadable checkpoint, a broken plugin, a config key a
#: component does not take, a grid too large for softmax attention. The ``corrkit``
#: command and the tools end on them with one line (:func:`corrkit.cli.common.user_errors`);
#: batch jobs report and skip the item that raised one.
USER_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError, UnknownArgumentError,
               AttentionMemoryError)
