"""PCK summaries and the text tables printed after an evaluation."""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from typing import Any, Sequence

from ..structures import DIFFICULTY_LEVELS
from ..utils.text import format_table


def average_pck(records: Sequence[dict], num_alphas: int, average: str) -> list[float]:
    """PCK in percent per alpha over pair records (``correct`` counts, ``num_valid``).

    ``average='pair'`` averages each pair's fraction; ``'keypoint'`` pools all
    keypoints. Returns NaNs when there are no records.

    Examples:
        >>> recs = [dict(correct=[1], num_valid=1), dict(correct=[0], num_valid=3)]
        >>> average_pck(recs, 1, 'pair'), average_pck(recs, 1, 'keypoint')
        ([50.0], [25.0])
    """
    records = [r for r in records if r['num_valid'] > 0]
    if not records:
        return [float('nan')] * num_alphas
    if average == 'pair':
        return [100.0 * sum(r['correct'][i] / r['num_valid'] for r in records) / len(records)
                for i in range(num_alphas)]
    total = sum(r['num_valid'] for r in records)
    return [100.0 * sum(r['correct'][i] for r in records) / total for i in range(num_alphas)]


def summarize(records: Sequence[dict], alphas: Sequence[float], average: str) -> dict:
    """Overall, per-category and (where annotated) per-difficulty PCK.

    Pairs without a valid keypoint are counted in ``pairs_without_keypoints``
    and left out of everything else.

    Returns:
        ``{'overall': {alpha: pck}, 'per_category': {category: {alpha: pck, 'pairs': n}},
        'per_difficulty': {field: {level: {alpha: pck, 'pairs': n}}}, 'num_pairs',
        'num_keypoints', 'pairs_without_keypoints'}`` with alphas as strings (JSON keys).
    """
    empty = sum(1 for r in records if r['num_valid'] == 0)
    records = [r for r in records if r['num_valid'] > 0]
    def block(group: Sequence[dict]) -> dict:
        values = average_pck(group, len(alphas), average)
        return {**{str(a): v for a, v in zip(alphas, values)}, 'pairs': len(group)}

    by_category = defaultdict(list)
    by_level: dict[str, dict[str, list]] = {field: defaultdict(list) for field in DIFFICULTY_LEVELS}
    for record in records:
        by_category[record['category']].append(record)
        for field, levels in DIFFICULTY_LEVELS.items():
            if record.get(field) is not None and int(record[field]) in levels:
                by_level[field][levels[int(record[field])]].append(record)
    overall = block(records)
    overall.pop('pairs')
    return {
        'overall': overall,
        'per_category': {c: block(by_category[c]) for c in sorted(by_category)},
        'per_difficulty': {field: {level: block(by_level[field][level])
                                   for level in dict.fromkeys(DIFFICULTY_LEVELS[field].values())
                                   if level in by_level[field]}
                           for field in DIFFICULTY_LEVELS if by_level[field]},
        'num_pairs': len(records),
        'num_keypoints': sum(r['num_valid'] for r in records),
        'pairs_without_keypoints': empty,
    }


def category_table(summary: dict, alphas: Sequence[float]) -> str:
    """Categories as columns and one row per alpha, as in TransforMatcher's Table A1."""
    categories = list(summary['per_category'])
    header = ['alpha', *categories, 'all']
    rows = [[str(a), *(summary['per_category'][c][str(a)] for c in categories),
             summary['overall'][str(a)]] for a in alphas]
    rows.append(['pairs', *(summary['per_category'][c]['pairs'] for c in categories),
                 summary['num_pairs']])
    return format_table(header, rows)


def difficulty_table(summary: dict, alphas: Sequence[float]) -> str:
    """One row per difficulty type and level, one column per alpha."""
    rows = [[field.replace('_variation', ''), level, *(values[str(a)] for a in alphas),
             values['pairs']]
            for field, levels in summary['per_difficulty'].items()
            for level, values in levels.items()]
    return format_table(['difficulty', 'level', *(f'PCK@{a}' for a in alphas), 'pairs'], rows)


def pairs_digest(records: Sequence[dict]) -> str:
    """A short fingerprint of the evaluated pairs (their sorted ids), to tell splits apart."""
    ids = sorted(str(r.get('pair_id')) for r in records)
    return hashlib.sha256('\n'.join(ids).encode()).hexdigest()[:16]


#: Categories a one-line description names before ``and N more``.
SHOWN_CATEGORIES = 5


def dataset_info(dataset: Any) -> dict:
    """What an evaluation on ``dataset`` measures, read from its attributes.

    A dataset with a ``measured_on()`` method (every corrkit pair dataset, see
    :meth:`~corrkit.datasets.base.PairDataset.measured_on`) says it itself; any other
    gets its class name and, where it has them, its ``split`` and ``data_root``.

    Examples:
        >>> class Plain:
        ...     split = 'val'
        >>> dataset_info(Plain())
        {'dataset': 'Plain', 'split': 'val'}
    """
    describe = getattr(dataset, 'measured_on', None)
    if callable(describe):
        return dict(describe())
    info: dict[str, Any] = {'dataset': type(dataset).__name__}
    for key in ('split', 'data_root'):
        value = getattr(dataset, key, None)
        if isinstance(value, (str, os.PathLike)):
            info[key] = str(value)
    return info


def describe_measured_on(info: dict) -> str:
    """One line for a :func:`dataset_info`: split, dataset, folder, pairs and categories.

    Examples:
        >>> describe_measured_on(dict(dataset='SPairDataset', split='val', pairs=20,
        ...                           data_root='data/mini-spair', categories=['camera', 'coins']))
        "split 'val' of SPairDataset at data/mini-spair: 20 pairs, categories camera, coins"
        >>> describe_measured_on(dict(dataset='SPairDataset', split='test',
        ...                           categories=[f'c{i}' for i in range(18)]))
        "split 'test' of SPairDataset: categories c0, c1, c2, c3, c4 and 13 more"
        >>> describe_measured_on({'dataset': 'MyDataset'})
        'MyDataset'
    """
    text = str(info.get('dataset', 'an unnamed dataset'))
    if info.get('split') is not None:
        text = f"split {info['split']!r} of {text}"
    if info.get('data_root'):
        text += f" at {info['data_root']}"
    details = []
    if info.get('pairs') is not None:
        details.append(f"{info['pairs']} pairs")
    categories = [str(c) for c in info.get('categories') or ()]
    if categories:
        shown = ', '.join(categories[:SHOWN_CATEGORIES])
        more = len(categories) - SHOWN_CATEGORIES
        details.append(f"{'category' if len(categories) == 1 else 'categories'} {shown}"
                       f"{f' and {more} more' if more > 0 else ''}")
    return f"{text}: {', '.join(details)}" if details else text


def measured_on_lines(reports: dict[str, dict]) -> list[str]:
    """``measured on ...`` lines for reports side by side, and a warning if they differ.

    One line when every report measured the same split of the same dataset; one per
    distinct measurement (naming its reports) otherwise, then a warning when the
    splits or datasets differ. Reports written before corrkit recorded ``measured_on``
    count as unknown; nothing is said when no report has it.

    Examples:
        >>> val = dict(dataset='SPairDataset', split='val', categories=['camera'])
        >>> test = dict(val, split='test', categories=['chelsea'])
        >>> print('\\n'.join(measured_on_lines({'a': {'measured_on': val},
        ...                                      'b': {'measured_on': val}})))
        measured on split 'val' of SPairDataset: category camera
        >>> print('\\n'.join(measured_on_lines({'a': {'measured_on': val},
        ...                                      'b': {'measured_on': test}, 'c': {}})))
        measured on split 'val' of SPairDataset: category camera (a)
        measured on split 'test' of SPairDataset: category chelsea (b)
        measured on: not recorded in the report (c)
        warning: different splits or datasets; these numbers are not comparable
    """
    infos = {name: r.get('measured_on') for name, r in reports.items()}
    if not any(infos.values()):
        return []
    groups: dict[str, list[str]] = {}
    for name, info in infos.items():
        text = f'on {describe_measured_on(info)}' if info else 'on: not recorded in the report'
        groups.setdefault(text, []).append(name)
    if len(groups) == 1:
        return [f'measured {next(iter(groups))}']
    lines = [f"measured {text} ({', '.join(names)})" for text, names in groups.items()]
    kinds = {(info.get('dataset'), info.get('split')) for info in infos.values() if info}
    if len(kinds) > 1:
        lines.append('warning: different splits or datasets; these numbers are not comparable')
    return lines


def comparison_table(reports: dict[str, dict]) -> str:
    """Overall PCK of several reports side by side (one row per model).

    Args:
        reports: Model name → a report as :class:`~corrkit.evaluation.PCKMetric` writes it.

    Raises:
        ValueError: If the reports differ in threshold, averaging, alphas or frame, or were
            measured on different pairs (``pairs_digest``, where both reports have one).

    Examples:
        >>> base = dict(threshold='bbox', average='pair', alphas=[0.1], num_pairs=2,
        ...             overall={'0.1': 50.0})
        >>> print(comparison_table({'zero-shot': base,
        ...                         'trained': dict(base, overall={'0.1': 75.0})}))
        model     PCK@0.1 pairs
        zero-shot    50.0     2
        trained      75.0     2
    """
    protocols = {(r['threshold'], r['average'], tuple(r['alphas']), r.get('frame', 'resized'))
                 for r in reports.values()}
    if len(protocols) != 1:
        raise ValueError(f'the reports follow different protocols {sorted(protocols)}; '
                         f'compare like with like')
    digests = {name: r['pairs_digest'] for name, r in reports.items() if r.get('pairs_digest')}
    if len(set(digests.values())) > 1:
        where = '; '.join(f"{name} on {describe_measured_on(r['measured_on'])}"
                          for name, r in reports.items() if r.get('measured_on'))
        raise ValueError(f'the reports were measured on different pairs (pairs_digest '
                         f'{digests}{f"; {where}" if where else ""}); evaluate every model '
                         f'on the same split')
    alphas = next(iter(protocols))[2]
    rows = [[name, *(r['overall'][str(a)] for a in alphas), r['num_pairs']]
            for name, r in reports.items()]
    return format_table(['model', *(f'PCK@{a}' for a in alphas), 'pairs'], rows)
