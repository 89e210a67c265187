"""The data sample's metainfo: PCK reference sizes and SPair-71k's difficulty schema."""
import pytest

from corrkit import structures
from corrkit.structures import (DIFFICULTY_FIELDS, DIFFICULTY_GRADES, DIFFICULTY_LEVELS,
                                difficulty_grade)


def test_every_level_has_a_grade():
    grades = {field: [difficulty_grade(field, value) for value in levels]
              for field, levels in DIFFICULTY_LEVELS.items()}
    assert grades == {'viewpoint_variation': ['easy', 'medium', 'hard'],
                      'scale_variation': ['easy', 'medium', 'hard'],
                      'truncation': ['easy', 'medium', 'medium', 'hard'],
                      'occlusion': ['easy', 'medium', 'medium', 'hard']}
    assert set(sum(grades.values(), [])) == set(DIFFICULTY_GRADES)


@pytest.mark.parametrize('field, value, message', [
    ('pose', 0, r"unknown difficulty field 'pose'; expected one of \('viewpoint_variation'"),
    ('scale_variation', 3, r"'scale_variation' has no level 3; expected one of \[0, 1, 2\]"),
])
def test_an_unknown_field_or_level_is_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        difficulty_grade(field, value)


def test_every_user_reads_the_one_schema():
    from corrkit.analysis import nonlocality
    from corrkit.datasets import spair
    from corrkit.datasets.transforms import formatting
    from corrkit.evaluation import report
    assert spair.DIFFICULTY_FIELDS is DIFFICULTY_FIELDS
    assert set(DIFFICULTY_FIELDS) <= set(formatting.META_KEYS)
    assert report.DIFFICULTY_LEVELS is DIFFICULTY_LEVELS
    assert nonlocality.LEVEL_NAMES is DIFFICULTY_GRADES


def test_old_import_paths_of_the_reference_sizes_keep_working():
    from corrkit.evaluation import THRESHOLD_KINDS, functional, pck_reference_sizes
    assert pck_reference_sizes is structures.pck_reference_sizes
    assert THRESHOLD_KINDS is structures.THRESHOLD_KINDS
    assert functional.REFERENCE_PAD_VALUE == structures.REFERENCE_PAD_VALUE
