"""The one atomic writer, the one hash and the one package-file lookup of corrkit."""
import hashlib
import os

import pytest

from corrkit.engine import atomic_write as engine_atomic_write
from corrkit.utils.fileio import (atomic_folder, atomic_path, atomic_write, package_file, sha256_of,
                                  stale_temporaries)


def test_the_engine_writes_with_the_same_function():
    assert engine_atomic_write is atomic_write


@pytest.mark.parametrize('interruption', [ValueError('bad data'), KeyboardInterrupt()],
                         ids=['error', 'interrupt'])
def test_an_interrupted_stream_leaves_the_old_file_and_no_temporary(tmp_path, interruption):
    target = tmp_path / 'weights.pth'
    target.write_bytes(b'old')
    with pytest.raises(type(interruption)):
        with atomic_path(target) as tmp:
            with open(tmp, 'wb') as out:
                out.write(b'half of the new')
            raise interruption
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['weights.pth']


def test_a_failed_rename_leaves_no_temporary(tmp_path):
    target = tmp_path / 'taken'
    (target / 'inside').mkdir(parents=True)  # a non-empty folder: os.replace refuses
    with pytest.raises(OSError):
        atomic_write(b'x', target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['taken']


def test_atomic_path_streams_into_a_new_folder_with_plain_permissions(tmp_path):
    target = tmp_path / 'new' / 'data.bin'
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.is_file() and not target.exists()
        with open(tmp, 'ab') as out:
            for _ in range(3):
                out.write(b'chunk')
    assert target.read_bytes() == b'chunk' * 3
    (tmp_path / 'plain.bin').write_bytes(b'x')
    assert target.stat().st_mode == (tmp_path / 'plain.bin').stat().st_mode  # not 0600


def test_stale_temporaries_are_those_of_matching_names(tmp_path, monkeypatch):
    def killed(fd):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(os, 'fsync', killed)
        atomic_write(b'x', tmp_path / 'epoch_1.pth')
    assert stale_temporaries(tmp_path) == []  # cleaned up even when interrupted
    left = tmp_path / f'.epoch_2.pth.{os.getpid()}.0123abcd.tmp'  # as a kill -9 leaves it
    left.write_bytes(b'')
    (tmp_path / '.notes.txt.1.0123abcd.tmp').write_bytes(b'')
    assert stale_temporaries(tmp_path, '*.pth') == [left]
    assert len(stale_temporaries(tmp_path)) == 2
    assert stale_temporaries(tmp_path / 'missing') == []


def test_sha256_of_reads_the_whole_file(tmp_path):
    data = os.urandom(3 << 20)  # more than one read chunk
    (tmp_path / 'f').write_bytes(data)
    assert sha256_of(tmp_path / 'f') == hashlib.sha256(data).hexdigest()


def test_package_file_names_the_package_and_the_file():
    assert package_file('corrkit', 'errors.py').is_file()
    with pytest.raises(FileNotFoundError, match=r"'data/nothing\.png' is missing from the "
                                                r"installed package 'corrkit'"):
        package_file('corrkit', 'data/nothing.png')
    with pytest.raises(FileNotFoundError, match=r"'a\.png' comes with the package "
                                                r"'no_such_pkg_x', which is not installed; "
                                                r"pip install no_such_pkg_x"):
        package_file('no_such_pkg_x', 'a.png')


def test_package_file_gives_the_pip_name_to_install(monkeypatch):
    import importlib.util
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(FileNotFoundError, match='pip install scikit-image'):
        package_file('skimage', 'data/astronaut.png')


def test_atomic_folder_replaces_on_success_and_keeps_the_old_one_on_error(tmp_path):
    target = tmp_path / 'data'
    target.mkdir()
    (target / 'old.txt').write_text('old')
    with pytest.raises(RuntimeError, match='half way'):
        with atomic_folder(target) as tmp:
            (tmp / 'new.txt').write_text('new')
            raise RuntimeError('half way')
    assert [p.name for p in target.iterdir()] == ['old.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data']  # no temporary left
    with atomic_folder(target) as tmp:
        (tmp / 'new.txt').write_text('new')
    assert [p.name for p in target.iterdir()] == ['new.txt']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data']
