"""A checksum failure is its own error type, and the weights cache tells it apart by type."""
import hashlib

import pytest

from corrkit.errors import ChecksumError, DownloadError, WeightsError
from corrkit.hub import weights_cache
from corrkit.hub.model_index import WeightsFile
from corrkit.utils.download import download_file, verify_file


def test_a_mismatching_file_raises_a_checksum_error_that_old_callers_still_catch(tmp_path):
    path = tmp_path / 'w.pth'
    path.write_bytes(b'weights')
    with pytest.raises(ChecksumError, match='w.pth has sha256') as err:
        verify_file(path, sha256='0' * 64, label='w.pth')
    assert isinstance(err.value, DownloadError) and isinstance(err.value, ValueError)
    with pytest.raises(DownloadError) as err:  # a short file is not a checksum failure
        verify_file(path, size=8)
    assert not isinstance(err.value, ChecksumError)
    with pytest.raises(ChecksumError):
        download_file(path.as_uri(), tmp_path / 'copy.pth', sha256='0' * 64, progress=None)
    assert not (tmp_path / 'copy.pth').exists()


@pytest.mark.parametrize('raised, expected', [
    (ChecksumError('tampered'), r'does not match the index \(tampered\)'),
    (DownloadError('could not download it: x has sha256 y'), 'could not fetch w-1234.pth'),
], ids=['checksum-without-the-words', 'network-with-the-words'])
def test_fetch_weights_tells_a_checksum_failure_by_its_type_not_its_text(
        tmp_path, monkeypatch, raised, expected):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))

    def download(*args, **kwargs):
        raise raised
    monkeypatch.setattr(weights_cache, 'download_file', download)
    weights = WeightsFile('https://weights.invalid/w-1234.pth',
                          hashlib.sha256(b'weights').hexdigest(), 'w')
    with pytest.raises(WeightsError, match=expected) as err:
        weights_cache.fetch_weights(weights, progress=False)
    assert err.value.__cause__ is raised


def test_a_corrupted_cached_file_is_raised_from_a_checksum_error(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    weights = WeightsFile('https://weights.invalid/w-1234.pth',
                          hashlib.sha256(b'weights').hexdigest(), 'w')
    cached = weights_cache.cache_path(weights)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'weightz')
    with pytest.raises(WeightsError, match='corrupt or another file') as err:
        weights_cache.fetch_weights(weights, progress=False)
    assert isinstance(err.value.__cause__, ChecksumError)
