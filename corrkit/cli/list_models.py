"""``corrkit list [PATTERN]``: the model names, what weights they load, one line each.

A model whose weights file (its published weights, else its backbone's file) has no
SHA-256 pinned in the model index is marked ``unverified``; a note under the table
names those files and how to pin them.
"""
from __future__ import annotations

import argparse

HELP = 'List the named models (a config each), their weights and a one-line description.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('pattern', nargs='?',
                        help="shell pattern ('*dinov2*'); a plain word matches names containing it")


def run(args: argparse.Namespace) -> int:
    """Print ``name  weights  check  description`` per model; ``weights`` says what
    ``checkpoint='auto'`` loads: ``published`` weights, a ``zero-shot`` model's backbone
    alone, or nothing yet (``train it``); ``check`` is ``unverified`` where that file (or
    the backbone's file the model starts from) has no pinned SHA-256, else blank."""
    from ..hub.model_index import load_model_index
    from ..hub.model_names import list_models
    index = load_model_index()
    rows, unverified = [], {}
    for name, description in list_models(args.pattern).items():
        info = index.get(name)
        weights = ('published' if info and info.weights else
                   'zero-shot' if info and info.zero_shot else 'train it')
        file = info and (info.weights or info.backbone_weights)
        check = ''
        if file and not file.verified:
            check = 'unverified'
            unverified[file.id or file.url] = file
        rows.append((name, weights, check, description))
    if not rows:
        print(f'no model matches {args.pattern!r}; corrkit list shows them all')
        return 1
    width = max(len(name) for name, _, _, _ in rows)
    for name, weights, check, description in rows:
        print(f'{name.ljust(width)}  {weights.ljust(9)}  {check.ljust(10)}  {description}')
    if unverified:
        print("\nunverified: the model index pins no SHA-256 for these weights files, so the "
              "file at their cache path is not checked against a known digest, and loading "
              "one warns. Pin one: write the file's SHA-256 from its hub page as its SHA256 "
              "in model-index.yml (Weights Files); see the package guide, 'Unverified "
              "weights'.")
        for key, file in sorted(unverified.items()):
            print(f'  {key}: {file.url}')
    return 0
