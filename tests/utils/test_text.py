"""The one table renderer: plain text for reports, markdown for listings and benchmarks."""
import pytest

from corrkit.utils.text import format_table

HEADER = ['model', 'PCK@0.1', 'pairs']
ROWS = [['zero-shot', 50.0, 2], ['trained', 75.25, 12]]


def test_plain_lines_up_numbers_on_the_right():
    lines = format_table(HEADER, ROWS).splitlines()
    assert lines == ['model     PCK@0.1 pairs',
                     'zero-shot    50.0     2',
                     'trained      75.2    12']


def test_aligned_markdown_reads_back_cell_by_cell():
    lines = format_table(HEADER, ROWS, style='markdown').splitlines()
    assert len({len(line) for line in lines}) == 1  # every column padded to one width
    assert set(lines[1]) == {'|', '-'}
    cells = [[c.strip() for c in line.strip('|').split('|')] for line in lines[:1] + lines[2:]]
    assert cells == [HEADER, ['zero-shot', '50.0', '2'], ['trained', '75.2', '12']]


def test_unaligned_markdown_keeps_cells_as_they_are():
    text = format_table(['a', 'b'], [['x', ''], ['longer', '1']], style='markdown', align=False)
    assert text == '| a | b |\n|---|---|\n| x |  |\n| longer | 1 |'


def test_an_empty_table_is_its_header():
    assert format_table(HEADER, []) == 'model PCK@0.1 pairs'


def test_a_ragged_row_is_named():
    with pytest.raises(ValueError, match=r"table row 1 has 2 cells but the header has 3"):
        format_table(HEADER, [ROWS[0], ['short', 1.0]])


def test_an_unknown_style_is_named():
    with pytest.raises(ValueError, match=r"unknown table style 'html'; expected one of"):
        format_table(HEADER, ROWS, style='html')


def test_reports_and_listings_use_it():
    from corrkit.evaluation import report
    from corrkit.cli.components import format_components
    assert report.format_table is format_table  # the old import path keeps working
    listing = format_components({'REFINERS': {'MeanRefiner': 'corrkit.x.MeanRefiner'}})
    assert listing == format_table(['registry', 'name', 'class'],
                                   [['REFINERS', 'MeanRefiner', 'corrkit.x.MeanRefiner']],
                                   style='markdown')
