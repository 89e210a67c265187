"""Measure how nonlocally a trained refiner attends (TransforMatcher Eq. 14) and draw Figs. 6-7.

Usage:
    python tools/analysis/nonlocality.py CONFIG [--checkpoint CKPT] [--out-dir DIR]
        [--split SPLIT] [--max-pairs N] [--num-queries N|all] [--scores {paper,relative}]
        [--groups 20] [--conv-dims 4 6] [--conv-kernels 3 5 7 9 11]
        [--cfg-options KEY=VALUE ...] [--device cpu] [--debug]

Writes nonlocality.json, nonlocality_hist.png (Figure 6) and, for pairs with difficulty
annotations (SPair-71k, the mini dataset), nonlocality_difficulty.png (Figure 7).
"""
import argparse
import math
import sys

from mmengine.config import DictAction

from corrkit.apis import nonlocality_report
from corrkit.apis.allocator import tune_cpu_allocator
from corrkit.cli.common import user_errors


def queries(value: str):
    """``all`` or a positive integer."""
    if value == 'all':
        return None
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f'--num-queries must be positive or "all", got {value}')
    return number


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='weights, or a training work dir (its newest '
                        'checkpoint); without it the model is analysed as the config builds it')
    parser.add_argument('--out-dir', help='default: work_dirs/<config name>/nonlocality')
    parser.add_argument('--split', help="dataset split instead of the test loader's")
    parser.add_argument('--max-pairs', type=int, help='analyse only the first N pairs')
    parser.add_argument('--num-queries', type=queries, default=1024,
                        help='matches sampled per layer and pair, or "all" (default 1024)')
    parser.add_argument('--scores', choices=('paper', 'relative'), default='paper',
                        help="additive attention's pairwise map (see the docs)")
    parser.add_argument('--groups', type=int, default=20, help="Figure 7's groups (default 20)")
    parser.add_argument('--conv-dims', type=int, nargs='+', default=[4, 6])
    parser.add_argument('--conv-kernels', type=int, nargs='+', default=[3, 5, 7, 9, 11])
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    with user_errors(args.debug):
        report = nonlocality_report(
            args.config, args.checkpoint, args.out_dir, args.cfg_options, args.split,
            args.max_pairs, args.num_queries, args.scores, args.groups, args.conv_dims,
            args.conv_kernels, args.device)
    print(f"nonlocality Φ (squared grid cells), scores={report['scores']!r}")
    for name, value in report['conv'].items():
        print(f'  conv {name:<24} {value:8.2f}')
    for layer in report['layers']:
        print(f"  attention layer {layer['layer']:<10} {layer['mean']:8.2f} "
              f"± {layer['std']:.2f} over {len(report['pairs'])} pairs")
    if not math.isnan(report['uniform']):
        print(f"  uniform over the grid      {report['uniform']:8.2f}")
    print('figures: ' + ' '.join(report['figures']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
