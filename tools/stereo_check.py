"""Evaluate matchers on real photographs with exact ground truth: the motorcycle stereo pair.

Usage:
    python tools/stereo_check.py [CONFIG ...] [--checkpoint CKPT] [--data-root DIR]
                                 [--work-dir DIR] [--cfg-options KEY=VALUE ...]

Writes the check on first use (scikit-image's Middlebury "Motorcycle" views and
disparity, two pairs, a grid of visible points; corrkit.datasets.mini.stereo)
and evaluates each config's model on it: PCK in the original images, boxes =
whole images (741 px), alphas 0.01 / 0.02 / 0.05 (7.4 / 14.8 / 37 px). Without
configs, every zero-shot config is run. The first line is the zero-motion floor
(every target predicted at its source position). Reports land in
WORK_DIR/<config name>/pck_bbox.json and WORK_DIR/stereo_check.json.
"""
import argparse
import json
import sys
from pathlib import Path

from mmengine.config import DictAction

from corrkit.apis import evaluate
from corrkit.datasets.mini.stereo import make_stereo_pairs, zero_motion_pck
from corrkit.apis.allocator import tune_cpu_allocator
from corrkit.cli.common import user_errors

ALPHAS = (0.01, 0.02, 0.05)
ZERO_SHOT = ('zeroshot_mobilenetv2', 'zeroshot_mobilenetv2_softargmax',
             'zeroshot_mobilenetv2_upsample', 'keypoint_mobilenetv2_zeroshot',
             'keypoint_mobilenetv2_zeroshot_240', 'keypoint_mobilenetv2_zeroshot_upsample',
             'keypoint_mobilenetv2_zeroshot_nn',
             'keypoint_mobilenetv2_zeroshot_softargmax')


def stereo_options(data_root: str) -> dict:
    """Overrides that point a config's test split at the stereo check."""
    return {'test_dataloader.dataset.type': 'SPairDataset',
            'test_dataloader.dataset.data_root': data_root,
            'test_dataloader.dataset.split': 'test',
            'test_evaluator.type': 'PCKMetric', 'test_evaluator.threshold': 'bbox',
            'test_evaluator.frame': 'original', 'test_evaluator.alphas': list(ALPHAS)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='*', help='configs to evaluate (default: the zero-shot '
                        'configs in configs/)')
    parser.add_argument('--checkpoint', help='weights for the one config given')
    parser.add_argument('--data-root', default='data/stereo-motorcycle')
    parser.add_argument('--work-dir', default='work_dirs/stereo_check')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE', help='overrides for every config')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    configs = args.configs or [str(Path(__file__).parents[1] / 'configs' / f'{name}.py')
                               for name in ZERO_SHOT]
    tune_cpu_allocator()
    with user_errors(args.debug):
        if args.checkpoint and len(configs) != 1:
            raise ValueError(f'--checkpoint needs exactly one config, got {len(configs)}')
        root = make_stereo_pairs(args.data_root)
        rows = {'zero motion': zero_motion_pck(root, ALPHAS)}
        for config in configs:
            name = Path(config).stem
            options = {**stereo_options(str(root)), **args.cfg_options}
            rows[name] = evaluate(config, args.checkpoint, str(Path(args.work_dir) / name),
                                  options)
    width = max(len(name) for name in rows)
    print(f'{"model":<{width}}  ' + '  '.join(f'PCK@{a} ({a * 741:.1f} px)' for a in ALPHAS))
    for name, metrics in rows.items():
        print(f'{name:<{width}}  ' + '  '.join(
            f'{metrics[f"PCK@{a}"]:>{len(f"PCK@{a} ({a * 741:.1f} px)")}.1f}' for a in ALPHAS))
    out = Path(args.work_dir) / 'stereo_check.json'
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(alphas=list(ALPHAS), frame='original', threshold='bbox',
                                   data_root=str(root), results=rows), indent=2))
    print(f'report: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
