"""Named models: every config of the repository's ``configs/`` by its name, also from a wheel.

A name is a config's path below the config folder without ``.py``
(``transformatcher_spair``, ``ablations/table1_t``). From a clone (or an
editable install) the folder is the repository's ``configs/``; a wheel carries
the same files in ``corrkit/.mim/configs`` (copied there when the wheel is
built, ``setup.py``), so names, ``_base_`` inheritance and relative paths work
without the repository. This module needs only the standard library.
"""
from __future__ import annotations

import difflib
import fnmatch
import os
from pathlib import Path

#: Where a wheel keeps the configs, relative to the package (OpenMMLab's layout).
PACKAGED = Path('.mim') / 'configs'


def config_root() -> Path:
    """The folder the names refer to: the packaged copy if there is one, else the repository's.

    Raises:
        FileNotFoundError: If neither exists (a broken installation).
    """
    package = Path(__file__).resolve().parents[1]
    for root in (package / PACKAGED, package.parent / 'configs'):
        if root.is_dir():
            return root
    raise FileNotFoundError(f"corrkit's configs are neither in '{package / PACKAGED}' (a wheel) "
                            f"nor in '{package.parent / 'configs'}' (a clone); reinstall corrkit")


def model_names() -> list[str]:
    """Every model name, sorted (the configs outside ``_base_``)."""
    root = config_root()
    return sorted(p.relative_to(root).with_suffix('').as_posix() for p in root.rglob('*.py')
                  if '_base_' not in p.relative_to(root).parts)


#: What a config file's path ends with; any other string is a model name.
CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')


def is_model_name(config: str | os.PathLike) -> bool:
    """Whether ``config`` reads as a name rather than a path: a string that does not end
    in a config file's suffix (``.py``, ``.json``, ``.yaml``, ``.yml``).

    Whether a file of that name exists does not matter, so a file in the working
    directory cannot stand in for a model name. A name is then resolved, and checked,
    by :func:`config_path`.

    Examples:
        >>> is_model_name('transformatcher_spair'), is_model_name('configs/my.py')
        (True, False)
    """
    return isinstance(config, str) and not config.lower().endswith(CONFIG_SUFFIXES)


def _refused(name: str) -> str | None:
    """Why ``name`` cannot be a model name, or None: a name is a config's path below the
    config folder in plain parts, never absolute, never through ``..`` or ``_base_``."""
    parts = name.replace('\\', '/').split('/')
    if os.path.isabs(name) or name.startswith(('/', '\\', '~')) or ':' in name:
        return 'an absolute path'
    if any(part in ('', '.', '..') for part in parts):
        return "a path with '.', '..' or an empty part"
    if '_base_' in parts:
        return "a base config (a '_base_' part)"
    return None


def config_path(name: str) -> Path:
    """The config file of a model name.

    A name resolves only to a ``.py`` file inside :func:`config_root`: an absolute
    path, ``..``, ``.``, an empty part or a ``_base_`` part is refused before any file
    is looked at, and so is a name whose file (followed through links) lies outside
    the folder. A config elsewhere is loaded by its path ending in ``.py``.

    Args:
        name: A name from :func:`list_models`, e.g. ``'transformatcher_spair'``.

    Returns:
        The path of its ``.py`` file.

    Raises:
        KeyError: If no config has that name, or ``name`` is not a name (see
            above); the message names it, suggests close names and how to list them.

    Examples:
        >>> config_path('transformatcher_tiny').name
        'transformatcher_tiny.py'
    """
    root = config_root()
    why = _refused(name)
    if why is not None:
        raise KeyError(f"no model named {name!r}: a model name is a config's path below "
                       f"'{root}' without '.py', not {why} (corrkit.list_models() lists "
                       f"them); load a config file elsewhere by its path ending in '.py'")
    path = root / f'{name}.py'
    if not path.is_file() or not path.resolve().is_relative_to(root.resolve()):
        raise KeyError(f"no model named {name!r} (configs in '{root}')"
                       f"{suggest_names(name, model_names())}; corrkit.list_models() lists "
                       f"them; a config file's path works too")
    return path


def suggest_names(name: str, names: list[str]) -> str:
    """``'; did you mean ...?'`` with up to three close names, or ``''``.

    Examples:
        >>> suggest_names('transformatcher_spiar', ['transformatcher_spair', 'ncnet_spair'])
        "; did you mean 'transformatcher_spair'?"
    """
    close = difflib.get_close_matches(name, names, n=3)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ''


def describe_config(path: str | os.PathLike) -> str:
    """The first sentence of a config's leading comment, on one line (at most 120 characters).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / 'c.py'
        >>> _ = path.write_text("# A model (see a.py. or b.py). More text.\\nmodel = dict()\\n")
        >>> describe_config(path)
        'A model (see a.py. or b.py).'
    """
    lines = []
    for line in Path(path).read_text(encoding='utf-8').splitlines():
        if not line.startswith('#'):
            break
        lines.append(line.lstrip('#').strip())
    text = ' '.join(line for line in lines if line)
    depth = 0
    for i, char in enumerate(text):  # up to the first full stop outside parentheses
        depth += (char == '(') - (char == ')')
        if char == '.' and depth == 0 and text[i + 1:i + 2] in (' ', ''):
            text = text[:i + 1]
            break
    return text if len(text) <= 120 else text[:119].rstrip() + '…'


def list_models(pattern: str | None = None) -> dict[str, str]:
    """Model names with a one-line description, optionally filtered.

    Args:
        pattern: A shell-style pattern (``'*dinov2*'``); a plain word matches
            the names that contain it.

    Returns:
        ``{name: description}``, sorted by name.

    Examples:
        >>> 'transformatcher_spair' in list_models('transformatcher')
        True
        >>> list(list_models('keypoint_mobilenetv2_zeroshot_n?'))
        ['keypoint_mobilenetv2_zeroshot_nn']
    """
    if pattern and not any(c in pattern for c in '*?['):
        pattern = f'*{pattern}*'
    root = config_root()
    return {name: describe_config(root / f'{name}.py') for name in model_names()
            if pattern is None or fnmatch.fnmatchcase(name, pattern)}
