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


def is_model_name(config: str | os.PathLike) -> bool:
    """Whether ``config`` reads as a name rather than a path: a string without the ``.py``
    suffix that is not an existing file."""
    return (isinstance(config, str) and not config.endswith('.py')
            and not os.path.isfile(config))


def config_path(name: str) -> Path:
    """The config file of a model name.

    Args:
        name: A name from :func:`list_models`, e.g. ``'transformatcher_spair'``.

    Returns:
        The path of its ``.py`` file.

    Raises:
        KeyError: If no config has that name; the message suggests close names
            and how to list them.

    Examples:
        >>> config_path('transformatcher_tiny').name
        'transformatcher_tiny.py'
    """
    root = config_root()
    path = root / f'{name}.py'
    if name.startswith('_base_') or not path.is_file():
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
