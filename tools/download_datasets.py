"""Download, check and unpack the benchmark datasets (SPair-71k, PF-PASCAL, PF-WILLOW).

Usage: python tools/download_datasets.py {spair,pfpascal,pfwillow,all} ... [--root data] [--check]

Each dataset goes to ROOT/<folder> (data/SPair-71k, data/PF-PASCAL, data/PF-WILLOW); the
archives stay in ROOT/.downloads. With --check nothing is downloaded: the tool only says
whether each dataset is in place, and what is expected where it is not.
"""
import argparse
import sys

from corrkit.datasets.download import DATASETS_SOURCES, DownloadError, prepare_dataset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('names', nargs='+', metavar='NAME', choices=[*DATASETS_SOURCES, 'all'],
                        help=f"dataset(s): {', '.join(DATASETS_SOURCES)} or all")
    parser.add_argument('--root', default='data', help='folder holding the datasets (data)')
    parser.add_argument('--check', action='store_true',
                        help='only check that the datasets are in place; no network')
    args = parser.parse_args(argv)
    names = list(DATASETS_SOURCES) if 'all' in args.names else list(dict.fromkeys(args.names))
    failed = False
    for name in names:
        try:
            path = prepare_dataset(name, args.root, download=not args.check)
        except (DownloadError, OSError) as err:  # OSError includes DatasetNotFoundError
            print(f'error: {err}', file=sys.stderr)
            failed = True
            continue
        print(f'{name}: {path}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
