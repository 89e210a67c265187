"""``corrkit list [PATTERN] [--ready]``: the model names, what weights they load, whether
they run now, one line each.

A model whose weights file (its published weights, else its backbone's file) has no
SHA-256 pinned in the model index is marked ``unverified``; a note under the table
names those files and how to pin them. The models that ``corrkit match``,
``match-pairs`` and ``transfer`` use by default are marked in the description, and
a line under the table says to start with them.
"""
from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..hub.model_index import ModelInfo

HELP = ('List the named models (a config each), their weights, whether they run now '
        '(offline) and a one-line description.')

#: What the ``runs now`` column shows for each :func:`readiness`.
READINESS_LABELS = {'yes': 'runs now', 'fetch': 'fetch it', 'no': ''}

#: The commands with a default model: command → its module in this package.
_DEFAULT_OF = {'match': 'match', 'match-pairs': 'match_pairs', 'transfer': 'transfer'}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('pattern', nargs='?',
                        help="shell pattern ('*dinov2*'); a plain word matches names containing it")
    parser.add_argument('--ready', action='store_true',
                        help='only the models that run now: every file they load is in the '
                             'cache, or they need none')


def readiness(info: ModelInfo | None) -> str:
    """Whether a model runs now, offline, with ``checkpoint='auto'``; no network, no hashing.

    Looks only at the cache paths of the files :func:`corrkit.hub.published.published_files`
    would load (the published weights, else a zero-shot model's backbone file).

    Args:
        info: The model's index entry (None: not in the index).

    Returns:
        ``'yes'`` if every file it loads is in the cache (or it loads none: a zero-shot
        model with a random backbone); ``'fetch'`` if its files are published but not
        all cached (it runs once they are downloaded); ``'no'`` if it must be trained
        first.
    """
    if info is None or (info.weights is None and not info.zero_shot):
        return 'no'
    file = info.weights or info.backbone_weights
    if file is None:
        return 'yes'
    from ..hub.weights_cache import cache_path
    return 'yes' if cache_path(file).is_file() else 'fetch'


def default_models() -> dict[str, list[str]]:
    """``{model name: [commands that use it without --model]}``, from the commands' own
    ``DEFAULT_MODEL``.

    Examples:
        >>> from corrkit.cli.match import DEFAULT_MODEL
        >>> default_models()[DEFAULT_MODEL]
        ['match', 'match-pairs']
    """
    import importlib
    defaults: dict[str, list[str]] = {}
    for command, module in _DEFAULT_OF.items():
        name = getattr(importlib.import_module(f'{__package__}.{module}'), 'DEFAULT_MODEL', None)
        if name:
            defaults.setdefault(name, []).append(command)
    return defaults


def footer(defaults: dict[str, list[str]]) -> str:
    """The note under the table: which models to start with and what ``runs now`` means.

    Examples:
        >>> print(footer({'zeroshot_mobilenetv2': ['match', 'match-pairs']}))
        start with: zeroshot_mobilenetv2 (corrkit match, match-pairs)
        runs now: its files are in the cache (offline); fetch it: checkpoint='auto' downloads them first
    """
    starts = ', '.join(f"{name} (corrkit {', '.join(commands)})"
                       for name, commands in defaults.items())
    start = textwrap.fill(f'start with: {starts}', width=100, break_long_words=False,
                          break_on_hyphens=False, subsequent_indent='  ')
    return (f"{start}\nruns now: its files are in the cache (offline); fetch it: "
            f"checkpoint='auto' downloads them first")


def run(args: argparse.Namespace) -> int:
    """Print ``name  weights  check  runs-now  description`` per model.

    ``weights`` says what ``checkpoint='auto'`` loads: ``published`` weights, a
    ``zero-shot`` model's backbone alone, or nothing yet (``train it``); ``check`` is
    ``unverified`` where that file (or the backbone's file the model starts from) has
    no pinned SHA-256, else blank; the next column is ``runs now`` where every file it
    loads is in the cache (:func:`readiness`), ``fetch it`` where they are published but
    not all cached, blank where it must be trained. A default model's description starts
    with ``[default of corrkit COMMAND]``. With ``--ready`` only the models that run now
    are listed; none is exit status 1.
    """
    from ..hub.model_index import load_model_index
    from ..hub.model_names import list_models
    index = load_model_index()
    defaults = default_models()
    rows, unverified = [], {}
    models = list_models(args.pattern)
    for name, description in models.items():
        info = index.get(name)
        ready = readiness(info)
        if args.ready and ready != 'yes':
            continue
        weights = ('published' if info and info.weights else
                   'zero-shot' if info and info.zero_shot else 'train it')
        file = info and (info.weights or info.backbone_weights)
        check = ''
        if file and not file.verified:
            check = 'unverified'
            unverified[file.id or file.url] = file
        if name in defaults:
            description = f"[default of corrkit {', '.join(defaults[name])}] {description}"
        rows.append((name, weights, check, READINESS_LABELS[ready], description))
    if not rows:
        if args.ready and models:
            which = f' matching {args.pattern!r}' if args.pattern else ''
            print(f'no model{which} runs now: its weights are not in the cache '
                  f'(make weights caches the defaults\' file)')
        else:
            print(f'no model matches {args.pattern!r}; corrkit list shows them all')
        return 1
    width = max(len(row[0]) for row in rows)
    for name, weights, check, ready, description in rows:
        print(f'{name.ljust(width)}  {weights.ljust(9)}  {check.ljust(10)}  {ready.ljust(8)}  '
              f'{description}')
    print(f'\n{footer(defaults)}')
    if unverified:
        print("\nunverified: the model index pins no SHA-256 for these weights files, so the "
              "file at their cache path is not checked against a known digest, and loading "
              "one warns. Pin one: write the file's SHA-256 from its hub page as its SHA256 "
              "in model-index.yml (Weights Files); see the package guide, 'Unverified "
              "weights'.")
        for key, file in sorted(unverified.items()):
            print(f'  {key}: {file.url}')
    return 0
