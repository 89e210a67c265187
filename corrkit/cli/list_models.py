"""``corrkit list [PATTERN]``: the model names, what weights they load, one line each."""
from __future__ import annotations

import argparse

HELP = 'List the named models (a config each), their weights and a one-line description.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('pattern', nargs='?',
                        help="shell pattern ('*dinov2*'); a plain word matches names containing it")


def run(args: argparse.Namespace) -> int:
    """Print ``name  weights  description`` per model; ``weights`` says what
    ``checkpoint='auto'`` loads: ``published`` weights, a ``zero-shot`` model's backbone
    alone, or nothing yet (``train it``)."""
    from ..hub.model_index import load_model_index
    from ..hub.model_names import list_models
    index = load_model_index()
    rows = []
    for name, description in list_models(args.pattern).items():
        info = index.get(name)
        weights = ('published' if info and info.weights else
                   'zero-shot' if info and info.zero_shot else 'train it')
        rows.append((name, weights, description))
    if not rows:
        print(f'no model matches {args.pattern!r}; corrkit list shows them all')
        return 1
    width = max(len(name) for name, _, _ in rows)
    for name, weights, description in rows:
        print(f'{name.ljust(width)}  {weights.ljust(9)}  {description}')
    return 0
