"""Loading configs the same way from every tool, notebook and test."""
from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

from mmengine.config import Config

from .hub.model_names import config_path, config_root, is_model_name, suggest_names

#: How a config's ``_base_`` names a config corrkit ships (OpenMMLab's package scope).
SHIPPED = 'corrkit::'


def load_config(config: str | os.PathLike | Config | dict,
                cfg_options: dict[str, Any] | None = None) -> Config:
    """Read a config, apply overrides and import its plugins.

    A model name resolves only to a config inside corrkit's config folder
    (:func:`~corrkit.hub.model_names.config_path`); any other config is given by its
    path ending in ``.py``. The plugins a config names in ``custom_imports`` are
    imported from the config's own folder or the folders above it, then from
    corrkit's own package (see :func:`import_plugins`), never first from the working
    directory, so a config can list ``plugins.<name>`` whichever script loads it and
    wherever it runs from. A ``_base_`` entry ``'corrkit::NAME.py'`` inherits a
    config corrkit ships, wherever the inheriting config lies (see
    :func:`shipped_config`).

    Args:
        config: A model name (``'transformatcher_spair'``, see
            :func:`corrkit.list_models`), the path of a ``.py`` config, a
            ``Config`` or a plain dict.
        cfg_options: Dotted-key overrides, e.g. ``{'model.backbone.pretrained': False}``.

    Returns:
        The merged config.

    Raises:
        KeyError: If a name (a string without ``.py``) names no config, or is no
            name (``..``, an absolute path, a ``_base_`` part); the message names it
            and suggests close names; also if a ``'corrkit::'`` base names no shipped
            config.
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
            with _shipped_bases():
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


def shipped_config(base: str) -> Path:
    """The file of a ``_base_`` entry ``'corrkit::NAME'`` (``NAME`` with or without ``.py``).

    ``NAME`` is a path below corrkit's config folder (:func:`~corrkit.hub.model_names.
    config_root`: the repository's ``configs/`` in a clone, ``corrkit/.mim/configs`` in
    a wheel), so a config outside the repository inherits a shipped model by its name
    (``'corrkit::transformatcher_mobilenetv2_mini.py'``) or a shipped base
    (``'corrkit::_base_/datasets/spair.py'``). It resolves only to a file inside that
    folder: absolute paths and ``..`` are refused. mmengine's own ``package::`` lookup
    needs ``pkg_resources`` and a wheel's ``.mim`` folder; this works in a clone and an
    editable install too.

    Args:
        base: The entry, starting with ``'corrkit::'``.

    Returns:
        The config file.

    Raises:
        KeyError: If ``NAME`` leaves the folder or names no file there; the message
            names the entry and suggests close names.

    Examples:
        >>> shipped_config('corrkit::zeroshot_mobilenetv2.py').name
        'zeroshot_mobilenetv2.py'
    """
    name = base[len(SHIPPED):] if base.startswith(SHIPPED) else base
    name = name[:-3] if name.endswith('.py') else name
    root = config_root()
    parts = name.replace('\\', '/').split('/')
    if os.path.isabs(name) or any(part in ('', '.', '..') for part in parts):
        raise KeyError(f"_base_ entry {base!r}: '{SHIPPED}' takes a config's path below "
                       f"'{root}' (a model name from corrkit list, or '_base_/...'), not an "
                       f'absolute path or one with ., .. or an empty part')
    path = root / f'{name}.py'
    if not path.is_file() or not path.resolve().is_relative_to(root.resolve()):
        names = sorted(p.relative_to(root).with_suffix('').as_posix()
                       for p in root.rglob('*.py'))
        raise KeyError(f"_base_ entry {base!r}: corrkit ships no config '{name}.py' in "
                       f"'{root}'{suggest_names(name, names)}; corrkit list shows the model "
                       f'names')
    return path


_BASES_LOCK = threading.RLock()  # re-entrant: a config may itself load a config


@contextlib.contextmanager
def _shipped_bases() -> Iterator[None]:
    """While reading a config, resolve its ``'corrkit::'`` bases with :func:`shipped_config`.

    mmengine resolves each ``_base_`` entry through ``Config._get_cfg_path``; it is
    wrapped for the duration of one read (entries without the prefix go to mmengine as
    before), under a lock, and restored after.
    """
    with _BASES_LOCK:
        original = Config.__dict__.get('_get_cfg_path')
        if not isinstance(original, staticmethod):  # another mmengine: leave it to mmengine
            yield
            return

        def resolve(cfg_path: str, filename: str):
            if cfg_path.startswith(SHIPPED):
                return os.fspath(shipped_config(cfg_path)), None
            return original.__func__(cfg_path, filename)

        Config._get_cfg_path = staticmethod(resolve)
        try:
            yield
        finally:
            Config._get_cfg_path = original


def import_plugins(cfg: Config) -> None:
    """Import the modules listed in ``cfg.custom_imports``, from where the config was shipped.

    The top package of each module is looked for, in this order, in the config file's
    folder and the two folders above it (a repository's ``configs/x.py`` finds the
    repository's ``plugins/``), then next to corrkit's own config folder (the plugins a
    wheel ships in ``corrkit/.mim``). Found there, it is imported from that folder
    alone; ``sys.path`` is left as it is, so the working directory can neither shadow
    it nor be put first for the rest of the process. A package found in none of them
    is imported as installed (``sys.path``).

    Args:
        cfg: A config, possibly with ``custom_imports = dict(imports=[...])``.

    Raises:
        ImportError: Naming the module that failed and the config that asked for it;
            also when the package is already imported from another folder than the
            one next to the config.
    """
    custom = cfg.get('custom_imports')
    if not custom:
        return
    modules = custom.get('imports', [])
    modules = [modules] if isinstance(modules, str) else modules
    for name in modules:
        try:
            folder = _plugin_folder(name.split('.')[0], cfg.filename)
            if folder is not None:
                _import_top_from(name.split('.')[0], folder)
            importlib.import_module(name)
        except Exception as err:  # any failure inside a plugin is reported the same way
            if custom.get('allow_failed_imports', False):
                continue
            raise ImportError(
                f"custom_imports of config '{cfg.filename}' could not import '{name}' "
                f'({type(err).__name__}: {err}); put the plugin package in the config\'s '
                f'folder or one above it, or install it') from err


def _plugin_folder(top: str, config_file: str | None) -> str | None:
    """The folder that holds package (or module) ``top`` next to the config, or None."""
    candidates = []
    if config_file:
        folder = os.path.dirname(os.path.abspath(config_file))
        for _ in range(3):  # the config's folder and two above it
            candidates.append(folder)
            folder = os.path.dirname(folder)
    try:
        candidates.append(os.fspath(config_root().parent))  # what corrkit itself ships
    except FileNotFoundError:
        pass
    for folder in candidates:
        if (os.path.isfile(os.path.join(folder, top, '__init__.py'))
                or os.path.isfile(os.path.join(folder, top + '.py'))):
            return folder
    return None


def _home(module: ModuleType) -> str | None:
    """The folder a top-level module or package was imported from."""
    locations = list(getattr(module, '__path__', None) or [])
    if locations:
        return os.path.dirname(os.path.realpath(locations[0]))
    file = getattr(module, '__file__', None)
    return os.path.dirname(os.path.realpath(file)) if file else None


def _import_top_from(top: str, folder: str) -> None:
    """Import top-level package ``top`` from ``folder`` only, without touching ``sys.path``;
    its submodules then import through the package's own ``__path__``."""
    loaded = sys.modules.get(top)
    if loaded is not None:
        home = _home(loaded)
        if home != os.path.realpath(folder):
            raise ImportError(f"'{top}' is already imported from '{home}', not from "
                              f"'{folder}' next to the config")
        return
    spec = importlib.machinery.PathFinder.find_spec(top, [folder])
    if spec is None or spec.loader is None:
        raise ImportError(f"'{top}' in '{folder}' cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(top, None)
        raise
