"""Print every corrkit registry as a table.

Usage: python tools/list_components.py [CONFIG]

With CONFIG, the plugins of its ``custom_imports`` are imported first and listed too.
"""
import argparse
import sys

from corrkit.cli.components import format_components, registered_components
from corrkit.config import load_config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='config whose custom_imports to load')
    args = parser.parse_args(argv)
    if args.config:
        try:
            load_config(args.config)
        except (OSError, ImportError) as err:
            print(f'error: {err}', file=sys.stderr)
            return 1
    print(format_components(registered_components()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
