"""A weights file without a pinned SHA-256 is marked unverified everywhere, and loading it warns."""
import hashlib
import warnings
from pathlib import Path

import pytest

from corrkit.cli import main
from corrkit.hub.model_index import WeightsFile, load_model_index, weights_file
from corrkit.hub.weights_cache import fetch_weights

HF = 'https://huggingface.co/timm/tiny_net.x/resolve/main/model.safetensors'


def test_the_index_marks_files_without_a_pinned_sha256_as_unverified():
    unpinned = weights_file('timm/resnet101.tv_in1k')
    assert unpinned.sha256 is None and not unpinned.verified
    assert 'timm/resnet101.tv_in1k' in unpinned.unverified_note
    assert 'hub page' in unpinned.unverified_note
    pinned = weights_file('torchvision/mobilenet_v2.IMAGENET1K_V1')
    assert pinned.verified and pinned.unverified_note == ''
    index = load_model_index()
    assert not index['dinov2_zeroshot_spair'].backbone_weights.verified
    assert index['zeroshot_mobilenetv2'].backbone_weights.verified


def test_corrkit_list_shows_unverified_weights_and_names_the_files(capsys):
    assert main(['list', 'dinov2_zeroshot_spair']) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0].split()
    assert first[:3] == ['dinov2_zeroshot_spair', 'zero-shot', 'unverified']
    assert 'timm/vit_base_patch14_dinov2.lvd142m' in out and 'SHA256' in out
    assert main(['list', 'zeroshot_mobilenetv2']) == 0  # a pinned file: no mark, no note
    out = capsys.readouterr().out
    assert 'unverified' not in out
    assert main(['list', 'transformatcher_spair']) == 0  # its backbone file is unpinned
    out = capsys.readouterr().out
    assert out.split()[:3] == ['transformatcher_spair', 'train', 'it'] and 'unverified' in out
    assert 'timm/resnet101.tv_in1k' in out


def seed_hf_cache(root, repo, filename, data):
    folder = root / f"models--{repo.replace('/', '--')}"
    blob = folder / 'blobs' / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    snapshot = folder / 'snapshots' / ('c' * 40) / filename
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(Path('..') / '..' / 'blobs' / blob.name)
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text('c' * 40)
    return snapshot


def test_loading_an_unverified_file_warns_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    snapshot = seed_hf_cache(tmp_path, 'timm/tiny_net.x', 'model.safetensors', b'tensors')
    with pytest.warns(UserWarning, match=r"'timm/tiny_net\.x' .*is unverified") as record:
        assert fetch_weights(WeightsFile(HF, None, 'timm/tiny_net.x'), progress=False) == snapshot
    message = str(record[0].message)
    assert HF in message and str(snapshot) in message and 'SHA-256' in message
    pinned = WeightsFile(HF, hashlib.sha256(b'tensors').hexdigest(), 'timm/tiny_net.x')
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a pinned file loads silently
        assert fetch_weights(pinned, progress=False) == snapshot


def test_an_unverified_torch_hub_file_warns_too(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    source = tmp_path / 'w-1234.pth'
    source.write_bytes(b'weights')
    with pytest.warns(UserWarning, match=r"'w' .*is unverified.*nothing was checked|"
                                         r"nothing was checked.*'w' .*is unverified"):
        fetch_weights(WeightsFile(source.as_uri(), None, 'w'), progress=False)
