"""Sending the PCK reports of a Runner's validation and test to its work directory."""
from __future__ import annotations

from pathlib import Path

from mmengine.hooks import Hook

from ..registry import HOOKS
from .pck_metric import PCKMetric


@HOOKS.register_module()
class PCKReportHook(Hook):
    """Point every :class:`PCKMetric` without an ``out_dir`` at the run's work directory.

    Test reports go to ``<work_dir>/pck_<threshold>.json``; validation reports
    to ``<work_dir>/val/pck_<threshold>.json`` (overwritten at each validation).
    ``configs/_base_/default_runtime.py`` adds this hook to every corrkit config.
    """

    priority = 'LOW'

    def before_val(self, runner) -> None:
        _point(runner.val_loop.evaluator.metrics, Path(runner.work_dir) / 'val')

    def before_test(self, runner) -> None:
        _point(runner.test_loop.evaluator.metrics, Path(runner.work_dir))


def _point(metrics: list, folder: Path) -> None:
    for metric in metrics:
        if isinstance(metric, PCKMetric) and metric.out_dir is None:
            metric.out_dir = str(folder)
