"""Write the embedded mini dataset (SPair-71k format) from photos shipped in packages.

Usage:
    python tools/make_mini_dataset.py [--out-dir data/mini-spair] [--seed 0]
                                      [--views-trn 40] [--views-val 10] [--views-test 20]
                                      [--image-size 320] [--overwrite] [--coco]

With --coco it also writes the dataset as a keypoint-transfer collection with
exact ground truth (OUT_DIR/transfer_references.json, transfer_ground_truth.json
and transfer_targets/<photo>.txt; see the transfer guide).
"""
import argparse
import json
import sys
import time

from corrkit.datasets.mini import DEFAULT_VIEWS, make_mini_dataset
from corrkit.datasets.mini.coco import write_mini_coco
from corrkit.cli.common import user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default='data/mini-spair')
    parser.add_argument('--seed', type=int, default=0)
    for split, count in DEFAULT_VIEWS.items():
        parser.add_argument(f'--views-{split}', type=int, default=count,
                            help=f'pairs per photo in the {split} split')
    parser.add_argument('--image-size', type=int, default=320, help='longest image side')
    parser.add_argument('--overwrite', action='store_true', help='replace a different dataset')
    parser.add_argument('--coco', action='store_true',
                        help='also write the views as a keypoint-transfer collection (COCO '
                             'keypoints) with exact ground truth')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    views = {split: getattr(args, f'views_{split}') for split in DEFAULT_VIEWS}
    start = time.perf_counter()
    with user_errors(args.debug):
        path = make_mini_dataset(args.out_dir, seed=args.seed, views=views,
                                 image_size=args.image_size, overwrite=args.overwrite)
    pairs = json.loads((path / 'mini_dataset.json').read_text())['pairs']
    print(f'mini dataset: {path} ({", ".join(f"{k} {v}" for k, v in pairs.items())} pairs, '
          f'{time.perf_counter() - start:.1f} s)')
    if args.coco:
        with user_errors(args.debug):
            print(f'keypoint-transfer collection: {write_mini_coco(path)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
