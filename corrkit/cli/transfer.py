"""``corrkit transfer --refs REFS.json TARGET ...``: carry labelled keypoints to a collection."""
from __future__ import annotations

import argparse
import os
import sys

from . import standalone
from .match import add_model_arguments

HELP = ('Transfer the keypoints of a few labelled images (COCO keypoints) to every target '
        'image: annotations.json (COCO, for annotation tools), results.json, keypoints.csv '
        'and, with --html, the review gallery; resumable, sharded under torchrun.')

#: The model ``corrkit transfer`` uses without --model or --config: the most accurate one
#: that runs offline with ``make weights`` on the transfer checks (see the transfer guide).
DEFAULT_MODEL = 'keypoint_mobilenetv2_zeroshot_upsample'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..apis.transfer import DEFAULT_MIN_SCORE
    from ..apis.feature_store import STORE_DTYPES
    from ..ops.fusion import FUSIONS
    parser.add_argument('targets', nargs='+', metavar='TARGET',
                        help='target images: files, folders, text files listing paths, '
                             'COCO files')
    parser.add_argument('--refs', required=True, metavar='REFS.json',
                        help='the references: a COCO keypoints file')
    parser.add_argument('--refs-root', metavar='DIR',
                        help="folder of the references' file_name (default: the JSON's folder)")
    add_model_arguments(parser)
    parser.set_defaults(model=None)
    parser.add_argument('--out-dir', default='work_dirs/transfer')
    parser.add_argument('--category', metavar='NAME', help="only this category's references")
    parser.add_argument('--min-score', type=float, default=DEFAULT_MIN_SCORE, metavar='S',
                        help=f'points scoring below S are flagged (COCO v=1); default '
                             f'{DEFAULT_MIN_SCORE}')
    parser.add_argument('--fusion', choices=list(FUSIONS), default='geometric_median',
                        help="how several references' candidates are combined")
    parser.add_argument('--batch-size', type=int, default=8,
                        help='targets encoded per backbone call')
    parser.add_argument('--html', action='store_true', help='also write gallery.html')
    parser.add_argument('--eval', metavar='GT.json',
                        help="ground truth (COCO keypoints of the targets): report PCK")
    parser.add_argument('--feature-cache', metavar='DIR',
                        help='keep every image\'s features here between runs')
    parser.add_argument('--cache-dtype', choices=list(STORE_DTYPES), default='float32',
                        help='how the feature cache stores maps')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help="'pytorch' under torchrun: each rank takes its share of the targets")
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def _distributed(launcher: str, device: str) -> tuple[int, int, str]:
    """``(rank, world size, device)``, starting the process group under torchrun; on GPUs
    each process takes the device of its local rank."""
    if launcher == 'none':
        return 0, 1, device
    import torch
    import torch.distributed as dist
    if device.startswith('cuda'):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group('nccl' if device.startswith('cuda') else 'gloo')
    return dist.get_rank(), dist.get_world_size(), device


def run(args: argparse.Namespace) -> int:
    from ..apis import init_matcher
    from ..apis.allocator import tune_cpu_allocator
    from ..apis.collection import read_targets
    from ..apis.transfer import transfer_keypoints
    from .common import user_errors
    tune_cpu_allocator()
    rank, world = 0, 1
    with user_errors(args.debug):
        rank, world, device = _distributed(args.launcher, args.device)
        targets = read_targets(args.targets)
        model = init_matcher(args.config or args.model or DEFAULT_MODEL, args.checkpoint,
                             device, args.cfg_options)

        def report_error(target_id: str, message: str) -> None:
            print(f'\nerror: target {target_id}: {message} (skipped)', file=sys.stderr)

        report = transfer_keypoints(
            model, args.refs, targets, args.out_dir, refs_root=args.refs_root,
            category=args.category, min_score=args.min_score, fusion=args.fusion,
            precision=args.precision, batch_size=args.batch_size,
            feature_cache=args.feature_cache, cache_dtype=args.cache_dtype, html=args.html,
            progress=not args.no_progress and rank == 0, on_error=report_error,
            rank=rank, world_size=world)
        if rank == 0 and args.eval:
            from ..evaluation.transfer_pck import evaluate_transfer, format_transfer_pck
            result = evaluate_transfer(report.paths['annotations'], args.eval, targets)
            print(format_transfer_pck(result))
            report.paths['eval'] = result.save(os.path.join(args.out_dir, 'eval.json'))
    if rank != 0:
        return 1 if report.failed else 0
    print(f'{report.targets} targets: {len(report.done)} transferred, {len(report.skipped)} '
          f'already done, {len(report.failed)} failed; {report.accepted} points accepted, '
          f'{report.flagged} flagged (score < {args.min_score}); {report.encoded} images '
          f'encoded' + (f', {report.cache_hits} from the feature cache'
                        if args.feature_cache else '') + (f' by {world} processes'
                                                          if world > 1 else ''))
    for target_id, message in report.failed.items():
        print(f'failed: {target_id}: {message}')
    for kind, path in report.paths.items():
        print(f'{kind}: {path}')
    return 1 if report.failed else 0


def main(argv=None) -> int:
    """This command alone, as a script would run it."""
    return standalone(sys.modules[__name__], argv)
