"""Loading configs the same way from every tool, notebook and test."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

from mmengine.config import Config

from .hub.model_names import config_path, is_model_name


def load_config(config: str | os.PathLike | Config | dict,
                cfg_options: dict[str, Any] | None = None) -> Config:
    """Read a config, apply overrides and import its plugins.

    Plugin packages are found from the current working directory and from the
    folders above the config file, so a config can list ``plugins.<name>`` in
    ``custom_imports`` whichever script loads it and wherever it runs from.

    Args:
        config: A model name (``'transformatcher_spair'``, see
            :func:`corrkit.list_models`), the path of a ``.py`` config, a
            ``Config`` or a plain dict.
        cfg_options: Dotted-key overrides, e.g. ``{'model.backbone.pretrained': False}``.

    Returns:
        The merged config.

    Raises:
        KeyError: If a name (a string without ``.py`` that is no file) names no
            config; the message suggests close names.
        FileNotFoundError: If the config file does not exist.
        ValueError: If the file is not a valid Python config (the message names the
            file and the error), or an override does not fit it.
        ImportError: If a module of ``custom_imports`` cannot be imported; the
            message names the module and the config.
    """
    if isinstance(config, Config):
        cfg = Config(config.to_dict(), filename=config.filename)
    elif isinstance(config, dict):
        cfg = Config(config)
    else:
        path = os.fspath(config_path(config) if is_model_name(config) else config)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file '{path}' does not exist")
        try:
            cfg = Config.fromfile(path, import_custom_modules=False)
        except (SyntaxError, NameError, TypeError, AttributeError, IndexError,
                AssertionError) as err:  # configs are Python: report the line, not a trace
            where = (f' (line {err.lineno})' if isinstance(err, SyntaxError) and err.lineno
                     else '')
            raise ValueError(f"config file '{path}' could not be read{where}: "
                             f'{type(err).__name__}: {err}') from err
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except (IndexError, TypeError, KeyError) as err:
            raise ValueError(f'--cfg-options {cfg_options} do not fit the config '
                             f"'{cfg.filename}': {type(err).__name__}: {err}") from err
    import_plugins(cfg)
    return cfg


def import_plugins(cfg: Config) -> None:
    """Import the modules listed in ``cfg.custom_imports``.

    Args:
        cfg: A config, possibly with ``custom_imports = dict(imports=[...])``.

    Raises:
        ImportError: Naming the module that failed and the config that asked for it.
    """
    custom = cfg.get('custom_imports')
    if not custom:
        return
    modules = custom.get('imports', [])
    modules = [modules] if isinstance(modules, str) else modules
    for name in modules:
        _make_importable(name.split('.')[0], cfg.filename)
        try:
            importlib.import_module(name)
        except Exception as err:  # any failure inside a plugin is reported the same way
            if custom.get('allow_failed_imports', False):
                continue
            raise ImportError(
                f"custom_imports of config '{cfg.filename}' could not import '{name}' "
                f'({type(err).__name__}: {err}); run from the directory that contains the '
                f'plugin package, or install it') from err


def _make_importable(top: str, config_file: str | None) -> None:
    """Put the folder holding package ``top`` on ``sys.path`` if it is not importable yet."""
    if importlib.util.find_spec(top) is not None:
        return
    candidates = [os.getcwd()]
    if config_file:
        folder = os.path.dirname(os.path.abspath(config_file))
        for _ in range(3):
            candidates.append(folder)
            folder = os.path.dirname(folder)
    for folder in candidates:
        if os.path.isdir(os.path.join(folder, top)) or os.path.isfile(os.path.join(folder, top + '.py')):
            sys.path.insert(0, folder)
            return
