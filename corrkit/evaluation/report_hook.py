"""Sending the PCK reports of a Runner's validation and test to its work directory."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..registry import DATASETS, HOOKS
from .pck_metric import PCKMetric
from .report import dataset_info, describe_measured_on


@HOOKS.register_module()
class PCKReportHook(Hook):
    """Point every :class:`PCKMetric` without an ``out_dir`` at the run's work directory,
    and tell every one what it measures.

    Test reports go to ``<work_dir>/pck_<threshold>.json``; validation reports
    to ``<work_dir>/val/pck_<threshold>.json`` (overwritten at each validation).
    Each metric's ``dataset_info`` is set from the loop's dataset
    (:func:`~corrkit.evaluation.report.dataset_info`), so the tables and reports name
    the split and categories. At the first validation of a run whose config tests
    another split (or dataset), one log line says that validation PCK is not the
    test figure. ``configs/_base_/default_runtime.py`` adds this hook to every
    corrkit config.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._noted = False

    def before_val(self, runner) -> None:
        metrics = runner.val_loop.evaluator.metrics
        _point(metrics, Path(runner.work_dir) / 'val')
        info = _tell(metrics, runner.val_loop)
        if not self._noted:
            self._noted = True
            note = validation_note(getattr(runner, 'cfg', None), info)
            if note:
                print_log(note, logger='current')

    def before_test(self, runner) -> None:
        metrics = runner.test_loop.evaluator.metrics
        _point(metrics, Path(runner.work_dir))
        _tell(metrics, runner.test_loop)


def _point(metrics: list, folder: Path) -> None:
    for metric in metrics:
        if isinstance(metric, PCKMetric) and metric.out_dir is None:
            metric.out_dir = str(folder)


def _tell(metrics: list, loop: Any) -> dict | None:
    """Set ``dataset_info`` on the PCK metrics from the loop's dataset; return it."""
    dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
    if dataset is None:
        return None
    info = dataset_info(dataset)
    for metric in metrics:
        if isinstance(metric, PCKMetric):
            metric.dataset_info = info
    return info


def validation_note(cfg: Any, info: dict | None) -> str | None:
    """The line saying validation measures other images than ``tools/test.py``, or ``None``.

    Read from the config's ``val_dataloader`` and ``test_dataloader`` dataset entries
    (nothing is built); ``None`` when they measure the same split of the same data, or
    when the config does not say.

    Examples:
        >>> val = dict(type='SPairDataset', data_root='data/mini-spair', split='val')
        >>> cfg = dict(val_dataloader=dict(dataset=val),
        ...            test_dataloader=dict(dataset=dict(val, split='test')))
        >>> print(validation_note(cfg, dict(dataset='SPairDataset', split='val',
        ...                                 categories=['camera', 'coins'])))
        ... # doctest: +NORMALIZE_WHITESPACE
        validation measures split 'val' of SPairDataset: categories camera, coins;
        tools/test.py measures split 'test' of the same dataset, other images:
        expect a different PCK there
        >>> validation_note(dict(cfg, test_dataloader=dict(dataset=val)), None) is None
        True
    """
    val, test = (configured_dataset(cfg, loop) for loop in ('val', 'test'))
    if val is None or test is None or test['split'] is None:
        return None
    same_data = all(val[key] == test[key] for key in ('dataset', 'data_root'))
    if same_data and val['split'] == test['split']:
        return None
    measured = describe_measured_on(info or val)
    tested = describe_measured_on(dict(dataset='the same dataset', split=test['split'])
                                  if same_data else test)
    return (f'validation measures {measured}; tools/test.py measures {tested}, other images: '
            f'expect a different PCK there')


def configured_dataset(cfg: Any, loop: str) -> dict | None:
    """What a config's ``<loop>_dataloader`` would measure, read without building it.

    Args:
        cfg: A config (or plain dict).
        loop: ``'val'`` or ``'test'``.

    Returns:
        ``{'dataset': type, 'split': split as the dataset's files name it (see
        :func:`_split`), 'data_root': ...}`` for :func:`describe_measured_on`, or
        ``None`` when the config has no such dataset entry.
    """
    dataset = _dataset_cfg(cfg, f'{loop}_dataloader')
    if dataset is None:
        return None
    return {'dataset': dataset.get('type'), 'split': _split(dataset),
            'data_root': dataset.get('data_root')}


def _split(dataset: Any) -> str | None:
    """The split a dataset entry reads, as its files name it: the entry's ``split``, else
    its class's default; aliases mapped through the class's ``SPLITS`` (``train`` is
    ``trn``). ``None`` when neither says."""
    split = dataset.get('split')
    try:
        cls = DATASETS.get(dataset.get('type'))
    except Exception:  # an unregistered or odd type: take the entry as written
        cls = None
    if split is None and cls is not None:
        try:
            default = inspect.signature(cls).parameters['split'].default
        except (KeyError, TypeError, ValueError):
            default = inspect.Parameter.empty
        split = None if default is inspect.Parameter.empty else default
    names = getattr(cls, 'SPLITS', None)
    return names.get(split, split) if isinstance(names, dict) else split


def _dataset_cfg(cfg: Any, key: str) -> dict | None:
    """``cfg[key]['dataset']`` when both are dicts (a Config or a plain dict), else ``None``."""
    try:
        loader = cfg.get(key)
        dataset = loader.get('dataset') if loader is not None else None
    except AttributeError:
        return None
    return dataset if hasattr(dataset, 'get') else None
