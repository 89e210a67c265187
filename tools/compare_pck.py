"""Print the overall PCK of several evaluation reports side by side.

Usage:
    python tools/compare_pck.py NAME=REPORT.json [NAME=REPORT.json ...]

Reports are the pck_<threshold>.json files that tools/test.py writes. Under the
header, a line says which split of which dataset (and which categories) the reports
measured, with a warning when they measured different ones.
"""
import argparse
import json
import sys

from corrkit.evaluation.report import comparison_table, measured_on_lines
from corrkit.cli.common import user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('reports', nargs='+', metavar='NAME=REPORT')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        reports = {}
        for item in args.reports:
            name, sep, path = item.partition('=')
            if not sep:
                raise ValueError(f'expected NAME=REPORT.json, got {item!r}')
            with open(path) as handle:
                reports[name] = json.load(handle)
        report = next(iter(reports.values()))
        print(f"PCK (%), threshold {report['threshold']!r}, averaged per {report['average']}")
        for line in measured_on_lines(reports):  # which split, dataset and categories
            print(line)
        print(comparison_table(reports))
    return 0


if __name__ == '__main__':
    sys.exit(main())
