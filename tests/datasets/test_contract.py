"""Every registered dataset: a missing data_root ends in a message that says what to do
(download it, get it from its publisher, or point data_root at the folder)."""
import pytest

from corrkit.datasets import DatasetNotFoundError
from corrkit.datasets.sources import DATASETS_SOURCES
from corrkit.registry import DATASETS


def dataset_names():
    DATASETS.import_from_location()
    return sorted(DATASETS.module_dict)


@pytest.mark.parametrize('name', dataset_names())
def test_missing_data_root_names_path_layout_and_command(tmp_path, name):
    root = tmp_path / 'absent'
    with pytest.raises(DatasetNotFoundError) as info:
        DATASETS.build(dict(type=name, data_root=str(root), split='test'))
    message = str(info.value)
    assert str(root) in message
    assert 'Expected layout' in message or 'layout' in message.lower()
    source = DATASETS.get(name).source
    if source is not None and DATASETS_SOURCES.get(source.name) == source:
        assert 'tools/download_datasets.py' in message  # in the download catalogue
    elif source is not None:  # published, but not downloadable by corrkit: where to get it
        assert all(remote.url in message for remote in source.files)


@pytest.mark.parametrize('name', dataset_names())
def test_lazy_init_reads_nothing(tmp_path, name):
    dataset = DATASETS.build(dict(type=name, data_root=str(tmp_path / 'absent'), split='test',
                                  lazy_init=True))
    assert dataset.split == 'test'
