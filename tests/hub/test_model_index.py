"""The model index covers every config, says the truth about each, and weights load loudly."""
import hashlib
import shutil
from pathlib import Path

import pytest
import timm
import torch
import torchvision
import yaml

from corrkit.apis import init_matcher
from corrkit.errors import WeightsError
from corrkit.models.backbones import random_weights_options
from corrkit.config import load_config
from corrkit.hub import model_index
from corrkit.hub.model_index import WeightsFile, load_model_index, model_info
from corrkit.hub.model_names import model_names
from corrkit.hub.offline_weights import hub_checkpoint_path, mobilenet_v2_weights
from corrkit.hub.weights_cache import cache_path, fetch_weights


@pytest.fixture(scope='module')
def index():
    return load_model_index()


def test_every_config_has_an_entry_and_every_entry_a_config(index):
    assert sorted(index) == model_names()
    for name, info in index.items():
        assert info.config == f'configs/{name}.py'
        assert info.metafile.is_file() and info.training_data and info.training_time


def backbone_weights_id(cfg):
    """The id the index must use for a config's backbone weights, derived from the config."""
    backbone = cfg.model.backbone
    if backbone.type == 'TorchvisionHypercolumnBackbone':
        if backbone.get('pretrained') is False or not (backbone.get('weights')
                                                       or backbone.get('pretrained')):
            return None
        return f"torchvision/{backbone.model_name}.{backbone.get('weights') or 'DEFAULT'}"
    return f'timm/{backbone.model_name}' if backbone.get('pretrained') else None


def test_each_entry_names_the_weights_its_config_loads(index):
    for name, info in index.items():
        expected = backbone_weights_id(load_config(name))
        assert (info.backbone_weights.id if info.backbone_weights else None) == expected, name


def test_weights_files_point_where_the_libraries_fetch_from(index):
    files = {info.backbone_weights.id: info.backbone_weights for info in index.values()
             if info.backbone_weights}
    mobilenet = files['torchvision/mobilenet_v2.IMAGENET1K_V1']
    assert mobilenet.url == torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.url
    # torchvision names a file after the first 8 hex digits of its SHA-256
    assert mobilenet.sha256.startswith(mobilenet.filename.rsplit('-', 1)[1].split('.')[0])
    assert mobilenet_v2_weights() == mobilenet  # the offline copy checks the index's digest
    for key, weights in files.items():
        if key.startswith('timm/'):
            assert weights.hf_repo[0] == timm.models.get_pretrained_cfg(key[5:]).hf_hub_id, key


def test_zero_shot_entries_have_no_parameters_outside_the_backbone(index):
    """A zero-shot entry loads only its backbone's weights: anything else would be random."""
    for name, info in index.items():
        if not info.zero_shot:
            continue
        cfg = load_config(name)
        model = init_matcher(cfg, cfg_options=random_weights_options(cfg))
        outside = [n for n, _ in model.named_parameters() if not n.startswith('backbone.')]
        assert outside == [], name


def test_results_say_whose_they_are(index):
    sources = {r.source for info in index.values() for r in info.results}
    assert sources == {'paper', 'corrkit'}
    for name, info in index.items():
        for result in info.results:
            if result.source == 'paper':
                assert info.paper.get('URL', '').startswith('https://arxiv.org/'), name
            else:
                assert result.machine and result.command and result.date.startswith('20'), name
    spair = index['transformatcher_spair'].results[0]
    assert (spair.source, spair.metrics['PCK@0.1'], spair.threshold) == ('paper', 53.7, 'bbox')


def write_index(tmp_path, models, files=None):
    meta = tmp_path / 'family.yml'
    meta.write_text(yaml.safe_dump({'Collections': [{'Name': 'F'}], 'Models': models}))
    path = tmp_path / 'model-index.yml'
    path.write_text(yaml.safe_dump({'Import': ['family.yml'], 'Weights Files': files or {}}))
    return path


def entry(name='m', **changes):
    base = {'Name': name, 'In Collection': 'F', 'Config': f'configs/{name}.py', 'Weights': None,
            'Metadata': {'Training Data': 'd', 'Training Resources': 'r', 'Training Time': 't',
                         'Zero-shot': False, 'Backbone Weights': None},
            'Results': []}
    base.update(changes)
    return base


@pytest.mark.parametrize('model, files, message', [
    (entry(Metadata={'Training Data': 'd'}), None, "model 'm': missing key 'Zero-shot'"),
    (entry(Metadata=dict(entry()['Metadata'], **{'Backbone Weights': 'x/y'})), None,
     "Backbone Weights 'x/y' is not in the index's Weights Files"),
    (entry(Results=[{'Dataset': 'D', 'Source': 'corrkit', 'Metrics': {'PCK@0.1': 50}}]), None,
     "model 'm', result 1: missing key 'Machine'"),
    (entry(Results=[{'Dataset': 'D', 'Source': 'blog', 'Metrics': {'PCK@0.1': 50}}]), None,
     "Source must be one of ('paper', 'corrkit'), got 'blog'"),
    (entry(Weights='https://example.org/m.pth'), None, "model 'm': missing key 'Weights SHA256'"),
    (entry(Weights='https://example.org/m.pth', **{'Weights SHA256': 'ABC'}), None,
     "model 'm': SHA256 must be 64 lowercase hex digits, got 'ABC'"),
    (entry(), {'w': {'URL': 'https://example.org/w.pth', 'SHA256': 'abc'}},
     "Weights Files 'w': SHA256 must be 64 lowercase hex digits"),
])
def test_a_bad_index_is_named_by_file_model_and_key(tmp_path, model, files, message):
    path = write_index(tmp_path, [model], files)
    with pytest.raises(ValueError, match=r'family\.yml|model-index\.yml') as err:
        load_model_index(path)
    assert message in str(err.value)


def test_a_model_listed_twice_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="model 'm' is already listed"):
        load_model_index(write_index(tmp_path, [entry(), entry()]))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    return tmp_path / 'torch'


def published(tmp_path, data=b'weights'):
    source = tmp_path / 'server' / 'w-1234.pth'
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    return WeightsFile(source.as_uri(), hashlib.sha256(data).hexdigest(), 'w')


def test_weights_are_fetched_into_torch_hub_cache_and_then_read_from_it(tmp_path, torch_home):
    weights = published(tmp_path)
    path = fetch_weights(weights, progress=False)
    assert path == torch_home / 'hub' / 'checkpoints' / 'w-1234.pth' == cache_path(weights)
    assert path.read_bytes() == b'weights'
    Path(weights.url[len('file://'):]).unlink()  # the cache alone serves it now
    assert fetch_weights(weights, progress=False) == path


def test_a_corrupted_cached_file_is_an_error_and_stays_where_it_is(tmp_path, torch_home):
    weights = published(tmp_path)
    cached = torch_home / 'hub' / 'checkpoints' / 'w-1234.pth'
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'weightz')
    with pytest.raises(WeightsError) as err:
        fetch_weights(weights, progress=False)
    for part in (str(cached), weights.url, weights.sha256, 'w-1234.pth'):
        assert part in str(err.value)
    assert cached.read_bytes() == b'weightz'


def test_a_downloaded_file_that_does_not_match_is_not_called_a_network_error(tmp_path,
                                                                            torch_home):
    weights = WeightsFile(published(tmp_path).url, hashlib.sha256(b'other').hexdigest(), 'w')
    with pytest.raises(WeightsError, match='downloaded from .* does not match the index'):
        fetch_weights(weights, progress=False)
    assert not (torch_home / 'hub' / 'checkpoints' / 'w-1234.pth').exists()


def test_an_unreachable_file_is_an_error_naming_url_file_and_cache(torch_home):
    weights = WeightsFile('https://weights.invalid/models/m-00000000.pth', '0' * 64, 'm')
    with pytest.raises(WeightsError) as err:
        fetch_weights(weights, progress=False)
    message = str(err.value)
    assert weights.url in message and 'm-00000000.pth' in message
    assert str(torch_home / 'hub' / 'checkpoints' / 'm-00000000.pth') in message


def seed_hf_cache(root, repo, filename, data, blob_name=None):
    """A Hugging Face cache entry as huggingface_hub writes it: blob, snapshot link, ref."""
    folder = root / f"models--{repo.replace('/', '--')}"
    blob = folder / 'blobs' / (blob_name or hashlib.sha256(data).hexdigest())
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    commit = 'c' * 40
    snapshot = folder / 'snapshots' / commit / filename
    snapshot.parent.mkdir(parents=True)
    snapshot.symlink_to(Path('..') / '..' / 'blobs' / blob.name)
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text(commit)
    return snapshot


HF = 'https://huggingface.co/timm/tiny_net.x/resolve/main/model.safetensors'


def test_a_pre_seeded_hugging_face_cache_is_used_and_its_blob_digest_checked(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    snapshot = seed_hf_cache(tmp_path, 'timm/tiny_net.x', 'model.safetensors', b'tensors')
    assert fetch_weights(WeightsFile(HF), progress=False) == snapshot
    pinned = WeightsFile(HF, hashlib.sha256(b'other').hexdigest())
    with pytest.raises(WeightsError, match='model.safetensors.*has sha256'):
        fetch_weights(pinned, progress=False)


def test_a_corrupted_hugging_face_blob_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    seed_hf_cache(tmp_path, 'timm/tiny_net.x', 'model.safetensors', b'tensors',
                  blob_name=hashlib.sha256(b'the real file').hexdigest())
    with pytest.raises(WeightsError, match='corrupt or another file'):
        fetch_weights(WeightsFile(HF), progress=False)


def test_a_missing_hugging_face_file_offline_names_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))  # HF_HUB_OFFLINE=1 (conftest)
    with pytest.raises(WeightsError) as err:
        fetch_weights(WeightsFile(HF), progress=False)
    message = str(err.value)
    assert HF in message and 'hf download timm/tiny_net.x model.safetensors' in message
    assert str(tmp_path / 'models--timm--tiny_net.x') in message


def test_auto_loads_a_zero_shot_model_from_the_checked_backbone_file():
    if not hub_checkpoint_path().is_file():
        pytest.fail(f'{hub_checkpoint_path()} is missing: run python tools/fetch_weights.py')
    model = init_matcher('zeroshot_mobilenetv2', checkpoint='auto')
    backbone = model.cfg.model.backbone  # built from the checked file, not by name
    assert (backbone.pretrained, backbone.weights) == (str(hub_checkpoint_path()), None)
    reference = torch.load(hub_checkpoint_path(), weights_only=True)
    first = next(v for k, v in model.backbone.state_dict().items() if k.endswith('weight'))
    assert any(torch.equal(first, v) for v in reference.values())


def test_auto_with_a_corrupted_backbone_file_refuses_to_build(tmp_path, torch_home):
    cached = torch_home / 'hub' / 'checkpoints' / 'mobilenet_v2-b0353104.pth'
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'not the weights')
    with pytest.raises(WeightsError, match='mobilenet_v2-b0353104.pth.*corrupt'):
        init_matcher('zeroshot_mobilenetv2', checkpoint='auto')


def test_auto_without_published_weights_names_what_to_fetch_and_builds_nothing():
    with pytest.raises(WeightsError) as err:
        init_matcher('transformatcher_spair', checkpoint='auto')
    message = str(err.value)
    assert "no trained weights are published for 'transformatcher_spair'" in message
    assert 'corrkit train transformatcher_spair' in message
    assert 'https://huggingface.co/timm/resnet101.tv_in1k/resolve/main/model.safetensors' in message


def test_auto_needs_a_name(repo):
    with pytest.raises(ValueError, match="checkpoint='auto' needs a model name"):
        init_matcher(str(repo / 'configs' / 'zeroshot_mobilenetv2.py'), checkpoint='auto')


def test_model_info_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean 'transformatcher_spair'"):
        model_info('transformatcher_spiar')


def test_auto_loads_published_trained_weights(tmp_path, torch_home, monkeypatch, repo):
    """A published checkpoint (URL + SHA-256 in an index) is fetched and loaded exactly."""
    model = init_matcher('transformatcher_tiny')
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    data_file = tmp_path / 'transformatcher_tiny-x.pth'
    torch.save({'state_dict': state}, data_file)
    digest = hashlib.sha256(data_file.read_bytes()).hexdigest()
    named = data_file.with_name(f'transformatcher_tiny-{digest[:8]}.pth')
    shutil.move(data_file, named)
    meta = dict(entry()['Metadata'], **{'Backbone Weights': 'unreachable'})
    index = write_index(  # the checkpoint holds the backbone too: its file is not fetched
        tmp_path, [entry('transformatcher_tiny', Weights=named.as_uri(), Metadata=meta,
                         **{'Weights SHA256': digest})],
        {'unreachable': {'URL': 'https://weights.invalid/backbone.pth', 'SHA256': None}})
    monkeypatch.setattr(model_index, 'index_path', lambda: index)
    loaded = init_matcher('transformatcher_tiny', checkpoint='auto')
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert (torch_home / 'hub' / 'checkpoints' / named.name).is_file()
