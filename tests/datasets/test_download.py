"""Downloading, verifying and unpacking datasets, offline: archives are served by file:// URLs."""
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile

import pytest

import corrkit.datasets.download
from corrkit.datasets import PFPascalDataset, PFWillowDataset, SPairDataset, sources
from corrkit.datasets.download import arrange, prepare_dataset
from corrkit.datasets.sources import (DATASETS_SOURCES, DatasetSource, RemoteFile,
                                      missing_dataset_message)
from corrkit.errors import DatasetNotFoundError, DownloadError
from corrkit.utils.download import download_file, safe_extract, verify_file
from corrkit.utils.fileio import sha256_of

LAYOUT = 'JPEGImages/<category>/<name>.jpg\n{trn,test}_pairs.csv\nmeta.txt'


def make_tar(path, files):
    """A .tar.gz holding ``files`` ({archive name: bytes})."""
    with tarfile.open(path, 'w:gz') as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def make_zip(path, files):
    with zipfile.ZipFile(path, 'w') as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def remote(path, checked=True, **kwargs):
    data = path.read_bytes()
    if checked:
        kwargs.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    return RemoteFile(path.as_uri(), path.name, **kwargs)


def fake_source(*files):
    return DatasetSource(name='fake', directory='Fake', files=tuple(files), layout=LAYOUT,
                         check_paths=('JPEGImages/cat/a.jpg', 'test_pairs.csv', 'meta.txt'))


@pytest.fixture
def served(tmp_path):
    """Images in a .tar.gz and pair lists nested in a .zip, both wrapped in a top folder."""
    server = tmp_path / 'server'
    server.mkdir()
    images = make_tar(server / 'images.tar.gz', {'Fake-v1/JPEGImages/cat/a.jpg': b'jpeg-a',
                                                 'Fake-v1/JPEGImages/dog/b.jpg': b'jpeg-b'})
    lists = make_zip(server / 'lists.zip', {'Fake-v1/lists/deep/test_pairs.csv': 'a,b\n',
                                            'Fake-v1/trn_pairs.csv': 'c,d\n',
                                            'Fake-v1/lists/readme.txt': 'hi'})
    (server / 'meta.txt').write_text('plain file')
    return server, images, lists


def test_prepare_dataset_unpacks_and_arranges(served, tmp_path, capsys):
    server, images, lists = served
    source = fake_source(remote(images), remote(lists), remote(server / 'meta.txt', extract=False))
    path = prepare_dataset(source, tmp_path / 'data')
    assert path == tmp_path / 'data' / 'Fake'
    assert (path / 'JPEGImages' / 'cat' / 'a.jpg').read_bytes() == b'jpeg-a'
    assert (path / 'JPEGImages' / 'dog' / 'b.jpg').is_file()
    assert (path / 'test_pairs.csv').read_text() == 'a,b\n'
    assert (path / 'trn_pairs.csv').read_text() == 'c,d\n'
    assert (path / 'meta.txt').read_text() == 'plain file'
    assert (path / 'lists' / 'readme.txt').is_file() and not (path / 'lists' / 'deep').exists()
    assert not (path / 'Fake-v1').exists()
    cache = tmp_path / 'data' / '.downloads'
    assert sorted(p.name for p in cache.iterdir()) == ['images.tar.gz', 'lists.zip', 'meta.txt']
    assert images.as_uri() in capsys.readouterr().out


def test_second_call_needs_no_network(served, tmp_path):
    server, images, lists = served
    source = fake_source(remote(images), remote(lists), remote(server / 'meta.txt', extract=False))
    root = tmp_path / 'data'
    path = prepare_dataset(source, root, verbose=False)
    for f in server.iterdir():
        f.unlink()
    assert prepare_dataset(source, root, verbose=False) == path
    # the dataset folder gone, the verified archives in .downloads are used again
    (path / 'test_pairs.csv').unlink()
    assert prepare_dataset(source, root, verbose=False) == path
    assert (path / 'test_pairs.csv').read_text() == 'a,b\n'


def test_wrong_sha256_names_expected_and_actual(served, tmp_path):
    _, images, _ = served
    actual = sha256_of(images)
    source = fake_source(RemoteFile(images.as_uri(), images.name, sha256='0' * 64))
    with pytest.raises(DownloadError) as err:
        prepare_dataset(source, tmp_path / 'data', verbose=False)
    msg = str(err.value)
    assert '0' * 64 in msg and actual in msg and images.name in msg
    assert list((tmp_path / 'data' / '.downloads').iterdir()) == []  # no temporary left


def test_verify_file_checks_size(tmp_path):
    f = tmp_path / 'f.bin'
    f.write_bytes(b'12345')
    assert verify_file(f, hashlib.sha256(b'12345').hexdigest(), 5) == f
    with pytest.raises(DownloadError, match=r'f\.bin has 5 bytes, expected 6'):
        verify_file(f, size=6)
    with pytest.raises(DownloadError, match='no such file'):
        verify_file(tmp_path / 'missing.bin')


def test_download_file_reports_progress_and_skips_verified_file(tmp_path):
    src = tmp_path / 'big.bin'
    src.write_bytes(b'x' * (3 << 20))
    calls = []
    dest = download_file(src.as_uri(), tmp_path / 'out' / 'big.bin',
                         progress=lambda done, total: calls.append((done, total)))
    assert dest.read_bytes() == src.read_bytes()
    assert calls[-1] == (3 << 20, 3 << 20) and len(calls) == 3
    src.unlink()
    assert download_file(src.as_uri(), dest, sha256=sha256_of(dest), progress=None) == dest


def test_unreachable_url_names_url_path_and_layout(tmp_path):
    url = (tmp_path / 'nowhere' / 'data.zip').as_uri()
    with pytest.raises(DownloadError, match='offline') as err:
        download_file(url, tmp_path / 'data.zip', progress=None)
    assert url in str(err.value) and not (tmp_path / 'data.zip').exists()
    source = fake_source(RemoteFile(url, 'data.zip'))
    with pytest.raises(DownloadError) as err:
        prepare_dataset(source, tmp_path / 'root', verbose=False)
    msg = str(err.value)
    for part in ('fake', url, str(tmp_path / 'root' / 'Fake'), 'JPEGImages/<category>', 'by hand'):
        assert part in msg


def test_missing_dataset_without_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        prepare_dataset('spair', tmp_path, download=False)
    assert isinstance(err.value, FileNotFoundError)
    msg = str(err.value)
    assert 'spair' in msg and str(tmp_path / 'SPair-71k') in msg
    assert 'PairAnnotation/{trn,val,test}/<pair>.json' in msg
    assert f'python tools/download_datasets.py spair --root {tmp_path}' in msg
    assert msg == missing_dataset_message('spair', tmp_path / 'SPair-71k')


def test_dataset_placed_by_hand_is_found_offline(tmp_path):
    path = tmp_path / 'PF-WILLOW'
    (path / 'car(G)').mkdir(parents=True)
    (path / 'test_pairs.csv').write_text('')
    assert prepare_dataset('pfwillow', tmp_path, download=False) == path


def test_message_for_a_differently_named_data_root():
    msg = missing_dataset_message('pfpascal', 'data/pascal')
    assert 'data/PF-PASCAL' in msg and 'data/pascal' in msg and '{trn,val,test}_pairs.csv' in msg


def test_builtin_sources_publish_no_checksums():
    for key, source in DATASETS_SOURCES.items():
        assert source.name == key and source.files
        assert all(f.sha256 is None and f.size is None for f in source.files)


def test_each_loader_declares_the_source_of_the_catalogue():
    classes = (SPairDataset, PFPascalDataset, PFWillowDataset)
    assert {cls.source.name: cls.source for cls in classes} == DATASETS_SOURCES
    with pytest.raises(KeyError, match="'spair' is already registered"):
        sources.register_source(DatasetSource('spair', 'Elsewhere', (), '', ()))


def test_old_import_paths_still_work():
    old = corrkit.datasets.download
    for name in ('DATASETS_SOURCES', 'DatasetNotFoundError', 'DatasetSource', 'DownloadError',
                 'RemoteFile', 'download_file', 'missing_dataset_message', 'safe_extract',
                 'sha256_of', 'verify_file'):
        assert getattr(old, name) is globals()[name], name
    from corrkit.hub.offline_weights import sha256_of as weights_sha256_of
    assert weights_sha256_of is sha256_of


def symlink(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize('members, bad', [
    ([tarfile.TarInfo('../evil.txt')], '../evil.txt'),
    ([tarfile.TarInfo('ok/../../evil.txt')], 'ok/../../evil.txt'),
    ([tarfile.TarInfo('{tmp}/abs_evil.txt')], '{tmp}/abs_evil.txt'),
    ([symlink('link', '../..')], 'link'),
    ([symlink('link', '/etc')], 'link'),
    # each link stays inside, but the second goes through the first: '..' would follow it out
    ([symlink('a/b/up', '../..'), symlink('escape', 'a/b/up/../..')], 'escape'),
    ([symlink('out', '..'), tarfile.TarInfo('out/evil.txt')], 'out'),
])
def test_unsafe_tar_members_are_refused(tmp_path, members, bad):
    archive = tmp_path / 'bad.tar'
    with tarfile.open(archive, 'w') as tf:
        tf.addfile(tarfile.TarInfo('fine.txt'), io.BytesIO(b''))
        for info in members:
            info.name = info.name.format(tmp=tmp_path)
            tf.addfile(info, io.BytesIO(b''))
    dest = tmp_path / 'work' / 'dest'
    dest.parent.mkdir()
    with pytest.raises(DownloadError, match='refused member') as err:
        safe_extract(archive, dest)
    assert f"'{bad.format(tmp=tmp_path)}'" in str(err.value) and str(archive) in str(err.value)
    assert not dest.exists()  # checked before anything is written
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['bad.tar', 'work']


@pytest.mark.parametrize('name', ['../evil.txt', '/abs_evil.txt', 'a/../../evil.txt'])
def test_unsafe_zip_members_are_refused(tmp_path, name):
    archive = make_zip(tmp_path / 'bad.zip', {'fine.txt': 'x', name: 'evil'})
    with pytest.raises(DownloadError, match=f"refused member '{name}'"):
        safe_extract(archive, tmp_path / 'dest')
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['bad.zip']


def test_safe_extract_keeps_links_inside(tmp_path):
    archive = tmp_path / 'ok.tgz'
    with tarfile.open(archive, 'w:gz') as tf:
        info = tarfile.TarInfo('./top/data/a.txt')
        info.size = 2
        tf.addfile(info, io.BytesIO(b'hi'))
        tf.addfile(symlink('top/alias', 'data/a.txt'))
    dest = safe_extract(archive, tmp_path / 'dest')
    assert (dest / 'top' / 'alias').read_text() == 'hi'
    with pytest.raises(DownloadError, match='not a readable archive'):
        (tmp_path / 'junk.zip').write_text('<html>not found</html>')
        safe_extract(tmp_path / 'junk.zip', tmp_path / 'dest2')


def test_arrange_unwraps_a_single_top_folder_and_hoists_pair_lists(tmp_path):
    extracted, target = tmp_path / 'x', tmp_path / 'target'
    (extracted / 'Top' / 'sub' / 'deep').mkdir(parents=True)
    (extracted / 'Top' / 'sub' / 'deep' / 'val_pairs.csv').write_text('new')
    (extracted / 'Top' / 'sub' / 'keep.txt').write_text('k')
    (extracted / '__MACOSX').mkdir()
    (target / 'sub').mkdir(parents=True)
    (target / 'sub' / 'old.txt').write_text('o')
    (target / 'val_pairs.csv').write_text('old')
    arrange(extracted, target)
    assert (target / 'val_pairs.csv').read_text() == 'new'
    assert sorted(p.name for p in (target / 'sub').iterdir()) == ['keep.txt', 'old.txt']
    assert not (target / 'Top').exists() and not (target / '__MACOSX').exists()


def test_arrange_keeps_top_folders_of_the_layout(tmp_path):
    for name, keep, expected in [('JPEGImages', ('JPEGImages',), 'JPEGImages/a.jpg'),
                                 ('JPEGImages', (), 'a.jpg')]:
        extracted, target = tmp_path / name / 'x', tmp_path / name / str(bool(keep))
        (extracted / name).mkdir(parents=True)
        (extracted / name / 'a.jpg').write_text('')
        arrange(extracted, target, keep=keep)
        assert (target / expected).is_file()
    # two top-level entries: nothing to unwrap
    extracted, target = tmp_path / 'two', tmp_path / 'two_target'
    (extracted / 'A').mkdir(parents=True)
    (extracted / 'b.txt').write_text('')
    arrange(extracted, target)
    assert (target / 'A').is_dir() and (target / 'b.txt').is_file()


def run_tool(repo, *args):
    return subprocess.run([sys.executable, 'tools/download_datasets.py', *args], cwd=repo,
                          capture_output=True, text=True, timeout=300)


def test_tool_check_reports_missing_dataset(repo, tmp_path):
    res = run_tool(repo, 'pfpascal', '--root', str(tmp_path), '--check')
    assert res.returncode == 1
    assert 'Annotations/<class>/<name>.mat' in res.stderr and str(tmp_path) in res.stderr
    assert 'Traceback' not in res.stderr and res.stdout == ''
    assert not (tmp_path / '.downloads').exists()


def test_tool_check_finds_dataset_in_place(repo, tmp_path):
    path = tmp_path / 'SPair-71k'
    for folder in ('JPEGImages', 'PairAnnotation', 'Layout/large'):
        (path / folder).mkdir(parents=True)
    (path / 'Layout' / 'large' / 'test.txt').write_text('')
    res = run_tool(repo, 'spair', '--root', str(tmp_path), '--check')
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f'spair: {path}'
