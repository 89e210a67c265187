"""The fused kernel's cache loads only what corrkit built: a private folder (0700, the
user's, no symbolic link), each library checked against its recorded SHA-256 and size,
a damaged one rebuilt once, and a kernel that cannot be used a warning, once, and the
PyTorch path for the process."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from corrkit.errors import FusedKernelError
from corrkit.layers import fused
from corrkit.models.refiners.match_to_match import MatchToMatchRefiner

SIZES = (5, 8, 2, 4, 16, True, True)
#: The kernel's functions, as a planted library would export them.
FUNCTIONS = '\n'.join(f'void {name}(void) {{}}' for name in fused._SIGNATURES)

pytestmark = pytest.mark.skipif(fused._compiler() is None, reason='no C compiler')


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch):
    """Each test loads afresh, as a new process would: nothing loaded, refused or
    warned about yet."""
    monkeypatch.setattr(fused, '_LOADED', {})
    monkeypatch.setattr(fused, '_REFUSED', set(), raising=False)
    monkeypatch.setattr(fused, '_FALLBACK', [], raising=False)
    monkeypatch.delenv(fused.ENV_SWITCH, raising=False)


def compile_library(folder: Path, source: str) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'planted.c').write_text(source)
    output = folder / 'planted.so'
    subprocess.run([*fused._compiler(), '-shared', '-fPIC', str(folder / 'planted.c'), '-o',
                    str(output)], check=True, capture_output=True)
    return output.read_bytes()


def evil_library(tmp_path: Path) -> tuple[bytes, Path]:
    """A library with the kernel's functions and a constructor that writes a marker file
    when it is loaded; the marker's path."""
    marker = tmp_path / 'marker'
    source = textwrap.dedent(f'''\
        #include <stdio.h>
        __attribute__((constructor)) static void planted(void) {{
            FILE *f = fopen("{marker}", "w");
            if (f) {{ fputs("loaded", f); fclose(f); }}
        }}
        ''') + FUNCTIONS
    return compile_library(tmp_path / 'evil', source), marker


def kernel_names(tmp_path: Path) -> tuple[str, str]:
    """The names the kernel of :data:`SIZES` is kept under: the common stem and the
    library's file name (built once into a scratch folder, never loaded)."""
    path = fused.build_kernel(SIZES, tmp_path / 'scratch')
    return path.name.split('-')[0].removesuffix('.so'), path.name


def write(path: Path, data: bytes, mode: int = 0o700) -> None:
    """``data`` in a new file at ``path``: replaced, never changed in place (the test
    process may have the old one loaded)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def plant(folder: Path, stem: str, data: bytes, mode: int = 0o700) -> None:
    """``data`` under every name the kernel could be looked up by, with a record that
    matches it."""
    name = f'{stem}-{hashlib.sha256(data).hexdigest()[:16]}.so'
    for library in (f'{stem}.so', name):
        write(folder / library, data, mode)
    record = {'library': name, 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()}
    write(folder / f'{stem}.json', json.dumps(record).encode(), 0o600)


def foreign_cache(tmp_path: Path, monkeypatch, name: str, folder_too: bool,
                  mode: int = 0o700) -> tuple[Path, str, Path]:
    """A cache folder (used through the environment) holding a planted library that
    belongs to another user (uid 65534), the folder too with ``folder_too``."""
    stem, _ = kernel_names(tmp_path)
    data, marker = evil_library(tmp_path)
    folder = tmp_path / name
    folder.mkdir(mode=0o700)
    plant(folder, stem, data, mode=mode)
    for path in ((folder,) if folder_too else ()) + tuple(folder.iterdir()):
        os.chown(path, 65534, 65534)
    monkeypatch.setenv(fused.ENV_CACHE, str(folder))
    return folder, stem, marker


def trained_looking():
    torch.manual_seed(0)
    refiner = MatchToMatchRefiner(in_channels=5, depth=2, embed_dims=8, num_heads=2,
                                  head_dims=4, mlp_ratio=2.0).eval()
    for p in refiner.parameters():
        p.data.normal_(0, 0.3)
    return refiner


def refine_twice(refiner):
    """The refiner's inference output, twice, and its PyTorch path's."""
    corr = torch.rand(2, 5, 3, 4, 3, 4)
    with torch.no_grad():
        first, second = refiner(corr), refiner(corr)
        refiner.fused = False
        expected = refiner(corr)
        refiner.fused = True
    return first, second, expected


def kernel_warnings(record) -> list[str]:
    return [str(w.message) for w in record if 'corrkit' in str(w.message)]


@pytest.mark.parametrize('mode, why', [(0o777, 'writable by group and others'),
                                       (0o775, 'writable by group'),
                                       (0o757, 'writable by others')])
def test_a_library_planted_in_a_shared_folder_is_never_loaded(tmp_path, monkeypatch, mode, why):
    stem, _ = kernel_names(tmp_path)
    data, marker = evil_library(tmp_path)
    shared = tmp_path / 'shared'
    shared.mkdir()
    plant(shared, stem, data)
    shared.chmod(mode)
    monkeypatch.setenv(fused.ENV_CACHE, str(shared))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        kernel = fused.fused_kernel(SIZES)
        assert fused.fused_kernel(SIZES) is kernel
        fused._LOADED.clear()  # another size, or a new model: still one warning
        fused.fused_kernel(SIZES)
    assert not marker.exists()
    assert kernel is not None and hasattr(kernel, 'ck_output')
    messages = kernel_warnings(record)
    assert len(messages) == 1
    assert f'the kernel cache {shared} is not used: it is {why} (mode {mode:o})' in messages[0]
    private = Path(fused._FALLBACK[0])
    assert f'built in {private} for this process instead' in messages[0]
    assert private.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in shared.iterdir()) == sorted(
        {f'{stem}.so', f'{stem}.json', json.loads((shared / f'{stem}.json').read_text())[
            'library']})  # nothing written there either


@pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() != 0,
                    reason='making a folder of another user needs root')
def test_a_folder_of_another_user_is_not_used(tmp_path, monkeypatch):
    theirs, stem, marker = foreign_cache(tmp_path, monkeypatch, 'theirs', folder_too=True)
    with pytest.warns(RuntimeWarning, match=r'is not used: it belongs to another user '
                                            r'\(uid 65534\)'):
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and not marker.exists()


@pytest.mark.skipif(not hasattr(os, 'geteuid') or os.geteuid() != 0,
                    reason='making a file of another user needs root')
def test_a_library_of_another_user_in_the_cache_is_rebuilt(tmp_path, monkeypatch):
    cache, stem, marker = foreign_cache(tmp_path, monkeypatch, 'kernels', folder_too=False,
                                        mode=0o755)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and hasattr(kernel, 'ck_output') and not marker.exists()
    record = json.loads((cache / f'{stem}.json').read_text())
    assert (cache / record['library']).stat().st_uid == os.geteuid()


def test_a_symbolic_link_to_a_cache_folder_is_not_followed(tmp_path, monkeypatch):
    stem, _ = kernel_names(tmp_path)
    data, marker = evil_library(tmp_path)
    real = tmp_path / 'real'
    real.mkdir(mode=0o700)
    plant(real, stem, data)
    link = tmp_path / 'link'
    link.symlink_to(real)
    monkeypatch.setenv(fused.ENV_CACHE, str(link))
    with pytest.warns(RuntimeWarning, match=f'the kernel cache {link} is not used: it is a '
                                            f'symbolic link'):
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and hasattr(kernel, 'ck_output') and not marker.exists()


@pytest.mark.parametrize('what', ['library', 'record'])
def test_a_symbolic_link_in_the_cache_is_not_followed(tmp_path, monkeypatch, what):
    """The library (or its record) in a private cache replaced by a link to a planted
    file whose record matches: not loaded, rebuilt."""
    cache = tmp_path / 'kernels'
    monkeypatch.setenv(fused.ENV_CACHE, str(cache))
    stem, _ = kernel_names(tmp_path)
    fused.build_kernel(SIZES)
    data, marker = evil_library(tmp_path)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    plant(elsewhere, stem, data)
    plant(cache, stem, data)
    links = [f'{stem}.json'] if what == 'record' else [
        f'{stem}.so', json.loads((cache / f'{stem}.json').read_text())['library']]
    for name in links:
        (cache / name).unlink()
        (cache / name).symlink_to(elsewhere / name)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and hasattr(kernel, 'ck_output') and not marker.exists()
    assert not (cache / f'{stem}.json').is_symlink()
    record = json.loads((cache / f'{stem}.json').read_text())
    assert not (cache / record['library']).is_symlink()


@pytest.mark.parametrize('mode', [0o770, 0o702])
def test_a_library_others_can_write_is_rebuilt(tmp_path, monkeypatch, mode):
    cache = tmp_path / 'kernels'
    monkeypatch.setenv(fused.ENV_CACHE, str(cache))
    stem, _ = kernel_names(tmp_path)
    fused.build_kernel(SIZES)
    data, marker = evil_library(tmp_path)
    plant(cache, stem, data, mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and hasattr(kernel, 'ck_output') and not marker.exists()
    record = json.loads((cache / f'{stem}.json').read_text())
    assert (cache / record['library']).stat().st_mode & 0o022 == 0


def test_a_library_that_is_not_the_recorded_one_is_rebuilt(tmp_path, monkeypatch):
    """Another library under the recorded name, its record unchanged: the SHA-256
    differs, and it is not loaded."""
    cache = tmp_path / 'kernels'
    monkeypatch.setenv(fused.ENV_CACHE, str(cache))
    path = fused.build_kernel(SIZES)
    data, marker = evil_library(tmp_path)
    for name in {path.name, path.name.split('-')[0].removesuffix('.so') + '.so'}:
        write(cache / name, data)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and hasattr(kernel, 'ck_output') and not marker.exists()
    record = json.loads((cache / f'{path.name.split("-")[0].removesuffix(".so")}.json')
                        .read_text())
    assert hashlib.sha256((cache / record['library']).read_bytes()).hexdigest() \
        == record['sha256']


def test_a_truncated_library_is_rebuilt_without_a_crash(tmp_path):
    """What a power cut during a build could leave: the library cut short. In a process of
    its own, where loading it would kill the process (SIGBUS)."""
    cache = tmp_path / 'kernels'
    path = fused.build_kernel(SIZES, cache)
    size = path.stat().st_size
    truncated = path.read_bytes()[:size // 2]
    write(path, truncated)
    old_name = cache / (path.name.split('-')[0].removesuffix('.so') + '.so')
    if old_name != path:  # where an unchecked loader would look
        write(old_name, truncated)
    script = textwrap.dedent(f'''\
        import warnings, torch
        warnings.simplefilter('error')
        from corrkit.layers import fused
        kernel = fused.fused_kernel({SIZES!r})
        assert kernel is not None and hasattr(kernel, 'ck_output')
        print('loaded')
        ''')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            env={**os.environ, fused.ENV_CACHE: str(cache)}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == 'loaded'
    record = json.loads(path.with_name(path.name.split('-')[0] + '.json').read_text())
    assert (cache / record['library']).stat().st_size == record['size'] == size


def test_a_library_without_the_kernels_functions_is_rebuilt(tmp_path, monkeypatch):
    """A library that loads but lacks the functions, with a record that matches it: built
    again, and the new one loads."""
    cache = tmp_path / 'kernels'
    monkeypatch.setenv(fused.ENV_CACHE, str(cache))
    path = fused.build_kernel(SIZES)
    empty = compile_library(tmp_path / 'empty', 'int nothing(void) { return 0; }\n')
    stem = path.name.split('-')[0].removesuffix('.so')
    plant(cache, stem, empty)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        kernel = fused.fused_kernel(SIZES)
    assert kernel is not None and hasattr(kernel, 'ck_output')
    record = json.loads((cache / f'{stem}.json').read_text())
    assert record['size'] != len(empty)


def test_a_kernel_that_cannot_be_used_warns_once_and_is_not_tried_again(tmp_path,
                                                                        monkeypatch):
    """A compiler whose libraries lack the kernel's functions: the cached one and its
    rebuild both fail, so the refiner warns once, runs its PyTorch kernels, and neither
    builds nor warns on the following calls."""
    real = ' '.join(fused._compiler())
    calls = tmp_path / 'calls'
    (tmp_path / 'empty.c').write_text('int nothing(void) { return 0; }\n')
    compiler = tmp_path / 'cc'
    compiler.write_text(textwrap.dedent(f'''\
        #!/bin/sh
        echo x >> {calls}
        while [ "$1" != "-o" ]; do shift; done
        exec {real} -shared -fPIC {tmp_path / "empty.c"} -o "$2"
        '''))
    compiler.chmod(0o755)
    monkeypatch.setenv('CC', str(compiler))
    monkeypatch.setenv(fused.ENV_CACHE, str(tmp_path / 'kernels'))
    fused.build_kernel(SIZES)  # a cached library without the functions
    calls.unlink()
    refiner = trained_looking()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        first, second, expected = refine_twice(refiner)
        assert refiner.inference_kernel(torch.rand(1, 5, 30)) is None
    messages = kernel_warnings(record)
    assert len(messages) == 1, messages
    assert 'runs without its fused CPU kernel' in messages[0]
    assert 'lacks the function ck_' in messages[0]
    assert len(calls.read_text().split()) == 1  # rebuilt once, not per call
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(second, expected)


def test_an_unusable_kernel_is_a_fused_kernel_error(tmp_path, monkeypatch):
    monkeypatch.setenv(fused.ENV_CACHE, str(tmp_path / 'kernels'))
    stem, _ = kernel_names(tmp_path)
    fused.build_kernel(SIZES)
    # every build of this process yields a library without the functions
    empty = compile_library(tmp_path / 'empty', 'int nothing(void) { return 0; }\n')
    monkeypatch.setattr(fused, '_compile', lambda *args: (empty, ['cc']), raising=False)
    plant(tmp_path / 'kernels', stem, empty)
    with pytest.raises(FusedKernelError, match=f'the kernel built in {tmp_path / "kernels"} '
                                               f'cannot be used: the library {stem}-'):
        fused._load(SIZES)


def test_the_default_cache_is_created_private_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.delenv(fused.ENV_CACHE, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    previous = os.umask(0o002)
    try:
        path = fused.build_kernel(SIZES)
    finally:
        os.umask(previous)
    assert path.parent == tmp_path / 'xdg' / 'corrkit' / 'kernels'
    for folder in (tmp_path / 'xdg' / 'corrkit', path.parent):
        assert folder.stat().st_mode & 0o777 == 0o700
    for file in path.parent.iterdir():
        assert file.stat().st_mode & 0o077 == 0, file
    record = json.loads(path.with_name(path.name.split('-')[0] + '.json').read_text())
    data = path.read_bytes()
    assert record['library'] == path.name and record['size'] == len(data)
    assert record['sha256'] == hashlib.sha256(data).hexdigest()
