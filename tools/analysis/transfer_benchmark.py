"""Throughput of ``corrkit transfer`` against ``corrkit match-pairs`` on the same pairs, and
its memory as the targets grow.

Usage:
    python tools/analysis/transfer_benchmark.py [--model NAME | --config CONFIG]
        [--data-root data/mini-spair | --coco FILE] [--category NAME] [--refs 1 5]
        [--targets 40] [--memory-targets 200 2000] [--memory-size 96] [--no-memory]
        [--batch-size 8] [--repeats 1] [--device cpu] [--cfg-options KEY=VALUE ...]
        [--out work_dirs/transfer_benchmark/transfer_benchmark.json] [--debug]

Throughput: for each K of --refs, the first K labelled images of one category are the
references and M (--targets) of its other images the targets (mirrored copies of them
when the category has too few). ``transfer_keypoints`` runs once over the K x M pairs;
``match_pairs`` runs over the same pairs, each source the reference's encoded region
(its box with the margin) and a keypoint file with its labelled points, listed target by
target (the order its feature cache serves best). A forward hook on ``model.backbone``
counts backbone calls, the images they carry and its seconds; each method is warmed up
once on one target, then timed with ``time.perf_counter`` in this process, on this model
(--repeats: in turns, medians).

Memory: ``corrkit transfer --no-progress`` in a subprocess with K = 1 over generated
targets (--memory-size pixels square, JPEG, varied content), once per count of
--memory-targets; its peak resident memory is its own ``ru_maxrss`` (``wait4`` in a small
launcher process, see LAUNCHER).

Prints a markdown table and writes the JSON of --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from mmengine.config import DictAction
from PIL import Image, ImageDraw, ImageOps

from corrkit.apis import init_matcher
from corrkit.apis.allocator import tune_cpu_allocator
from corrkit.apis.batch import ImagePair, match_pairs
from corrkit.apis.collection import read_references
from corrkit.apis.transfer import transfer_keypoints
from corrkit.cli.common import user_errors
from corrkit.utils.fileio import atomic_write
from corrkit.utils.image import load_image
from corrkit.utils.text import format_table

#: What ``corrkit transfer`` runs without --model (its DEFAULT_MODEL).
DEFAULT_MODEL = 'keypoint_mobilenetv2_zeroshot_upsample'
DEFAULT_OUT = 'work_dirs/transfer_benchmark/transfer_benchmark.json'


class BackboneCounter:
    """Counts ``model.backbone``'s forward calls, the images they carry and their seconds,
    while entered.

    Examples:
        >>> backbone = torch.nn.Conv2d(3, 1, 1)
        >>> with BackboneCounter(backbone) as seen:
        ...     _ = backbone(torch.zeros(4, 3, 2, 2)); _ = backbone(torch.zeros(1, 3, 2, 2))
        >>> seen.calls, seen.images, seen.seconds > 0
        (2, 5, True)
    """

    def __init__(self, backbone: torch.nn.Module):
        self.backbone, self.calls, self.images, self.seconds = backbone, 0, 0, 0.0
        self._handles, self._start = [], 0.0

    def _started(self, module, args) -> None:
        self._start = time.perf_counter()

    def _count(self, module, args, output) -> None:
        self.seconds += time.perf_counter() - self._start
        self.calls += 1
        self.images += int(args[0].shape[0])

    def __enter__(self) -> BackboneCounter:
        self._handles = [self.backbone.register_forward_pre_hook(self._started),
                         self.backbone.register_forward_hook(self._count)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()


@dataclass
class Collection:
    """A benchmark's inputs: references (a COCO file and its root) and target images."""

    refs: Path
    refs_root: Path
    targets: list[Path]


def mini_coco(root: Path, out: Path) -> Path:
    """The mini dataset's three splits as a COCO keypoints file (exact keypoints)."""
    from corrkit.datasets.mini.coco import mini_dataset_coco
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(mini_dataset_coco(root, ('trn', 'val', 'test'))))
    return out


def category_instances(coco_path: Path, category: str | None = None
                       ) -> tuple[dict, dict, list[dict]]:
    """A COCO keypoints file, one of its categories and that category's labelled instances.

    Args:
        coco_path: The COCO keypoints file.
        category: The category's name (default: the file's first).

    Returns:
        The file's content, the category and its instances with a labelled point, in order.

    Raises:
        KeyError: If there is no such category.
    """
    coco = json.loads(coco_path.read_text())
    named = {c['name']: c for c in coco['categories']}
    if category is not None and category not in named:
        raise KeyError(f'{coco_path} has no category {category!r}; it has {list(named)}')
    cat = coco['categories'][0] if category is None else named[category]
    return coco, cat, [a for a in coco['annotations'] if a['category_id'] == cat['id'] and
                       any(v > 0 for v in a['keypoints'][2::3])]


def write_references(coco: dict, category: dict, instances: Sequence[dict], out: Path) -> Path:
    """A COCO file of these instances (the references; ``file_name`` kept as is)."""
    images = {image['id']: image for image in coco['images']}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({'images': [images[a['image_id']] for a in instances],
                               'categories': [category], 'annotations': list(instances)}))
    return out


def image_paths(coco: dict, instances: Sequence[dict], root: Path) -> list[Path]:
    """The instances' image files."""
    names = {image['id']: image['file_name'] for image in coco['images']}
    return [root / names[a['image_id']] for a in instances]


def target_images(pool: Sequence[Path], count: int, folder: Path) -> list[Path]:
    """``count`` targets from ``pool``, then mirrored copies (written to ``folder``) of it."""
    targets = list(pool[:count])
    for i in range(count - len(targets)):
        source = pool[i % len(pool)]
        copy = folder / f'mirrored{i // len(pool)}_{source.stem}.png'
        folder.mkdir(parents=True, exist_ok=True)
        ImageOps.mirror(load_image(source)).save(copy)
        targets.append(copy)
    return targets


def reference_pairs(collection: Collection, folder: Path) -> list[ImagePair]:
    """The transfer's K x M pairs for ``match_pairs``, target by target.

    Each source is the region a transfer encodes for the reference (written as a PNG)
    and its keypoint file the reference's labelled points in that region.
    """
    _, refs = read_references(collection.refs, collection.refs_root)
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for r, ref in enumerate(refs):
        image = load_image(ref.image)
        region, points = folder / f'ref{r}.png', folder / f'ref{r}_kps.json'
        (image if ref.crop is None else image.crop(ref.crop)).save(region)
        points.write_text(json.dumps(ref.crop_points()[ref.labelled].tolist()))
        sources.append((region, points))
    return [ImagePair(f't{t}_r{r}', region, target, points)
            for t, target in enumerate(collection.targets)
            for r, (region, points) in enumerate(sources)]


def measure(model: torch.nn.Module, run: Callable[[], object]) -> dict:
    """Backbone calls, images through the backbone, its seconds and the wall seconds of one
    ``run()`` (CPU: the backbone's calls return when their work is done)."""
    with BackboneCounter(model.backbone) as seen:
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    return {'backbone_calls': seen.calls, 'backbone_images': seen.images,
            'backbone_seconds': seen.seconds, 'seconds': seconds}


def compare(model: torch.nn.Module, collection: Collection, work: Path, batch_size: int = 8,
            precision: str = 'fp32', repeats: int = 1) -> list[dict]:
    """``transfer_keypoints`` and ``match_pairs`` on the same pairs, each warmed up once.

    With ``repeats`` > 1 the two are timed in turns (each round into fresh folders), so
    that a burst of load from elsewhere hits both; times are the medians over the rounds
    and ``speedup`` (match_pairs' seconds over transfer's) the median of the rounds'.

    Returns:
        One row per method: ``method``, ``refs``, ``targets``, ``pairs``,
        ``backbone_calls``, ``backbone_images``, ``backbone_seconds``, ``seconds``,
        ``best_seconds`` (the fastest round: the least disturbed), ``rounds`` (each
        round's seconds), ``targets_per_s``, ``speedup``.
    """
    pairs = reference_pairs(collection, work / 'pairs')
    n_refs = len(pairs) // len(collection.targets)

    def transfer(targets: Sequence[Path], out: Path) -> None:
        transfer_keypoints(model, collection.refs, targets, out, refs_root=collection.refs_root,
                           precision=precision, batch_size=batch_size, progress=False)

    def pairwise(chosen: Sequence[ImagePair], out: Path) -> None:
        report = match_pairs(model, chosen, out, precision, progress=False)
        if report.failed:
            raise RuntimeError(f'match_pairs failed: {report.failed}')

    transfer(collection.targets[:1], work / 'warmup_transfer')
    pairwise(pairs[:n_refs], work / 'warmup_pairs')
    rounds = [(measure(model, lambda: transfer(collection.targets, work / f'transfer{i}')),
               measure(model, lambda: pairwise(pairs, work / f'pairs_out{i}')))
              for i in range(repeats)]
    speedup = float(np.median([b['seconds'] / a['seconds'] for a, b in rounds]))
    rows = []
    for j, method in enumerate(('transfer_keypoints', 'match_pairs')):
        runs = [r[j] for r in rounds]
        seconds = float(np.median([r['seconds'] for r in runs]))
        rows.append(dict(method=method, refs=n_refs, targets=len(collection.targets),
                         pairs=len(pairs), backbone_calls=runs[0]['backbone_calls'],
                         backbone_images=runs[0]['backbone_images'],
                         backbone_seconds=float(np.median([r['backbone_seconds'] for r in runs])),
                         seconds=seconds, best_seconds=min(r['seconds'] for r in runs),
                         rounds=[r['seconds'] for r in runs],
                         targets_per_s=len(collection.targets) / seconds,
                         speedup=speedup if j == 0 else 1.0))
    return rows


def generate_images(folder: Path, count: int, size: int = 96, seed: int = 0) -> list[Path]:
    """``count`` JPEGs of varied content (a smooth colour field and a few shapes)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        field = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(field).resize((size, size), Image.BILINEAR)
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x0, y0 = rng.integers(0, size - 8, 2)
            x1, y1 = x0 + rng.integers(6, size // 2), y0 + rng.integers(6, size // 2)
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
        paths.append(folder / f'{i:05d}.jpg')
        image.save(paths[-1], quality=90)
    return paths


#: Runs ``argv[2:]`` and writes its peak RSS (KiB) and exit status to ``argv[1]``. On Linux
#: a child's ``ru_maxrss`` is at least the high-water mark of the process that forked it
#: (folded in at ``exec``), so the command is forked by this small process, not by the
#: benchmark, which holds a model.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], 'w') as out:
    out.write(f'{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}')
"""


def peak_memory_run(command: Sequence[str], log: Path) -> dict:
    """Run ``command``; its peak resident memory (MiB, its own ``ru_maxrss``) and seconds.

    Raises:
        RuntimeError: If it fails (its output is in ``log``).
    """
    record = log.with_suffix('.rss')
    with open(log, 'wb') as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, '-c', LAUNCHER, os.fspath(record), *command],
                       stdout=out, stderr=subprocess.STDOUT, check=True)
        seconds = time.perf_counter() - start
    maxrss, code = (int(v) for v in record.read_text().split())
    if code != 0:
        raise RuntimeError(f'{list(command[:4])} exited with {code}; see {log}')
    return {'peak_rss_mb': maxrss / 1024, 'seconds': seconds}  # Linux: ru_maxrss in KiB


def transfer_command(collection: Collection, target_dir: Path, out: Path,
                     model: Sequence[str], device: str = 'cpu', batch_size: int = 8
                     ) -> list[str]:
    """``corrkit transfer`` over a folder of targets; ``model``: ``--model NAME`` or the like."""
    return [sys.executable, '-m', 'corrkit.cli', 'transfer', os.fspath(target_dir),
            '--refs', os.fspath(collection.refs), '--refs-root', os.fspath(collection.refs_root),
            *model, '--device', device, '--batch-size', str(batch_size),
            '--out-dir', os.fspath(out), '--no-progress']


def memory_rows(collection: Collection, counts: Sequence[int], work: Path,
                model: Sequence[str], device: str = 'cpu', size: int = 96,
                batch_size: int = 8) -> list[dict]:
    """Peak memory of a ``corrkit transfer`` subprocess per count of generated targets."""
    rows = []
    for count in counts:
        folder = work / f'generated_{count}'
        generate_images(folder, count, size)
        run = peak_memory_run(transfer_command(collection, folder, work / f'out_{count}',
                                               model, device, batch_size),
                              work / f'transfer_{count}.log')
        rows.append(dict(targets=count, image_side=size, **run,
                         targets_per_s=count / run['seconds']))
    return rows


def throughput_table(rows: Sequence[dict]) -> str:
    """Markdown: per K, both methods, and match_pairs' time over transfer's."""
    cells = [[r['refs'], r['targets'], r['method'], r['backbone_calls'], r['backbone_images'],
              f"{r['backbone_seconds']:.2f}", f"{r['seconds']:.2f}", f"{r['best_seconds']:.2f}",
              f"{r['targets_per_s']:.2f}",
              f"{r['speedup']:.2f}"] for r in rows]
    return format_table(['K', 'M', 'method', 'backbone calls', 'images', 'backbone s', 's',
                         'best s', 'targets/s', 'match_pairs s / this s'], cells, 'markdown')


def memory_table(rows: Sequence[dict]) -> str:
    """Markdown: peak memory and speed per count of targets."""
    cells = [[r['targets'], f"{r['image_side']}x{r['image_side']}", f"{r['peak_rss_mb']:.0f}",
              f"{r['seconds']:.1f}", f"{r['targets_per_s']:.2f}"] for r in rows]
    return format_table(['targets (K=1)', 'size', 'peak RSS MiB', 's', 'targets/s'],
                        cells, 'markdown')


def machine() -> dict:
    """Where the numbers come from."""
    return {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
            'torch_threads': torch.get_num_threads(), 'torch': torch.__version__}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--model', help=f'a model name (default {DEFAULT_MODEL})')
    which.add_argument('--config', help='a config file instead of a name')
    parser.add_argument('--data-root', default='data/mini-spair',
                        help='the mini dataset (python tools/make_mini_dataset.py), as COCO')
    parser.add_argument('--coco', help="a COCO keypoints file instead (images relative to "
                                       "its folder)")
    parser.add_argument('--category', help='its category to use (default: the first)')
    parser.add_argument('--refs', type=int, nargs='+', default=[1, 5], metavar='K')
    parser.add_argument('--targets', type=int, default=40, metavar='M')
    parser.add_argument('--memory-targets', type=int, nargs='+', default=[200, 2000])
    parser.add_argument('--memory-size', type=int, default=96, help='generated targets\' side')
    parser.add_argument('--no-memory', action='store_true', help='throughput only')
    parser.add_argument('--no-throughput', action='store_true', help='memory only')
    parser.add_argument('--batch-size', type=int, default=8, help='targets per backbone call')
    parser.add_argument('--repeats', type=int, default=1,
                        help='rounds of both methods, in turns; medians are reported')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    return parser.parse_args(argv)


def run(args: argparse.Namespace, work: Path) -> dict:
    """Every measurement the arguments ask for, as the JSON's content."""
    model_args = ['--config', args.config] if args.config else \
        ['--model', args.model or DEFAULT_MODEL]
    model = init_matcher(args.config or args.model or DEFAULT_MODEL, None, args.device,
                         args.cfg_options)
    coco_path = Path(args.coco) if args.coco else mini_coco(Path(args.data_root),
                                                            work / 'mini_coco.json')
    root = Path(args.coco).parent if args.coco else Path(args.data_root)
    coco, category, instances = category_instances(coco_path, args.category)
    if len(instances) <= max(args.refs):
        raise ValueError(f"category {category['name']!r} has {len(instances)} labelled "
                         f'images; {max(args.refs)} references leave no target')
    # the same targets for every K: the images after the most references asked for
    pool = image_paths(coco, instances[max(args.refs):], root)
    targets = target_images(pool, args.targets, work / 'mirrored')
    throughput = []
    for k in [] if args.no_throughput else args.refs:
        refs = write_references(coco, category, instances[:k], work / f'refs_k{k}.json')
        throughput += compare(model, Collection(refs, root, targets),
                              work / f'k{k}', args.batch_size, repeats=args.repeats)
    memory = []
    if not args.no_memory:
        refs = write_references(coco, category, instances[:1], work / 'refs_memory.json')
        memory = memory_rows(Collection(refs, root, []), args.memory_targets,
                             work / 'memory', [*model_args, *_cfg_args(args.cfg_options)],
                             args.device, args.memory_size, args.batch_size)
    return {'model': args.config or args.model or DEFAULT_MODEL,
            'mirrors_source': bool(model.mirrors_source), 'category': category['name'],
            'batch_size': args.batch_size, 'repeats': args.repeats, 'device': args.device,
            'machine': machine(),
            'throughput': throughput, 'memory': memory}


def _cfg_args(options: dict | None) -> list[str]:
    return [] if not options else ['--cfg-options', *(f'{k}={v}' for k, v in options.items())]


def main(argv=None) -> int:
    args = parse_args(argv)
    tune_cpu_allocator()  # as every entry point (CORRKIT_TUNE_MALLOC=0: a plain malloc)
    with user_errors(args.debug), tempfile.TemporaryDirectory(prefix='transfer_bench_') as tmp:
        command = ['python', 'tools/analysis/transfer_benchmark.py',
                   *(sys.argv[1:] if argv is None else argv)]
        result = {'command': ' '.join(command), **run(args, Path(tmp))}
    print(f"{result['model']} on {result['category']!r}, {result['device']}, "
          f"{result['machine']['cpu_count']} CPU cores, batch {result['batch_size']}")
    tables = [throughput_table(result['throughput']) if result['throughput'] else None,
              memory_table(result['memory']) if result['memory'] else None]
    print('\n\n'.join(t for t in tables if t))
    atomic_write(json.dumps(result, indent=1).encode(), args.out)
    print(f'written: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
