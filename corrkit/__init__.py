"""corrkit: a registry-based PyTorch framework for semantic correspondence."""

__version__ = '0.1.0'


def list_models(pattern: str | None = None) -> dict[str, str]:
    """Model names (the configs, ``init_matcher(name)``) with a one-line description.

    See :func:`corrkit.hub.model_names.list_models`; imported on first call, so
    ``import corrkit`` stays light.
    """
    from .hub.model_names import list_models as _list_models
    return _list_models(pattern)


__all__ = ['__version__', 'list_models']
