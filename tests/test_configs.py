"""Every shipped config builds offline and runs one forward pass at its input size."""
import re
from pathlib import Path

import pytest
import torch

from corrkit.apis import init_matcher
from corrkit.layers import AttentionMemoryError
from corrkit.models import KeypointMatcher
from corrkit.config import load_config

from .conftest import offline_options

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[1] / 'configs').rglob('*.py')
                 if '_base_' not in p.parts)


def test_configs_are_found():
    names = {p.name for p in CONFIGS}
    assert {'transformatcher_spair.py', 'zeroshot_mobilenetv2.py', 'transformatcher_tiny.py',
            'plugin_layer_weighted_refiner.py'} <= names


# Configs whose model refuses its own input size by design (the paper's out-of-memory row);
# they must refuse with AttentionMemoryError and run on a smaller input.
REFUSES_FULL_SIZE = {'transformatcher_softmax_spair'}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs(path):
    cfg = load_config(path)
    assert cfg.default_scope == 'corrkit'
    options = offline_options(cfg)
    model = init_matcher(path, cfg_options=options)
    if path.stem in REFUSES_FULL_SIZE:
        x = torch.zeros(1, 2, 3, *model.input_size)
        with torch.no_grad(), pytest.raises(AttentionMemoryError, match='GiB for its T x T'):
            model(x)
        model = init_matcher(path, cfg_options={**options, 'model.input_size': 64})
    with torch.no_grad():
        flow = model(torch.randn(1, 2, 3, *model.input_size))
    if isinstance(model, KeypointMatcher):  # its flow: the cells of the finest matched map
        grid, f = max(model.feature_sizes(*model.input_size), key=lambda hw: hw[0] * hw[1]), 1
    else:
        grid = max(model.feature_sizes(*model.input_size), key=lambda hw: hw[0] * hw[1])
        f = model.head.upsample_factor
    assert flow.shape == (1, 2, grid[0] * f, grid[1] * f)
    assert torch.isfinite(flow).all()


def test_plugin_config_swaps_in_the_plugin_refiner(repo, monkeypatch):
    monkeypatch.chdir(repo)
    model = init_matcher('configs/plugin_layer_weighted_refiner.py',
                         cfg_options={'model.backbone.pretrained': False})
    assert type(model.refiner).__name__ == 'LayerWeightedRefiner'
    assert type(model.refiner).__module__.startswith('plugins.')
    assert model.refiner.layer_logits.shape == (len(model.backbone.out_channels),)


def test_zero_shot_config_uses_mobilenet_and_mean_refiner():
    cfg = load_config(Path(__file__).resolve().parents[1] / 'configs' / 'zeroshot_mobilenetv2.py')
    assert cfg.model.backbone.type == 'TorchvisionHypercolumnBackbone'
    assert 'pretrained' not in cfg.model.backbone  # the weights name implies it; None turns off
    assert cfg.model.backbone.weights == 'IMAGENET1K_V1'  # the file make weights provides
    assert cfg.model.refiner == dict(type='MeanRefiner')  # _delete_ dropped the attention keys


def test_configs_carry_no_project_history():
    """Configs say why a value was chosen; issue numbers and measured figures live in the docs."""
    root = Path(__file__).resolve().parents[1] / 'configs'
    for path in root.rglob('*.py'):
        text = path.read_text()
        assert not re.search(r'\bissues?\b|#\d', text, re.IGNORECASE), path


def test_missing_config_and_broken_plugin_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match='no_such.py'):
        load_config(tmp_path / 'no_such.py')
    bad = tmp_path / 'bad.py'
    bad.write_text("custom_imports = dict(imports=['no_such_plugin_pkg'])\n")
    with pytest.raises(ImportError, match=r"bad.py' could not import 'no_such_plugin_pkg'"):
        load_config(bad)


DATA_CONFIGS = sorted((Path(__file__).resolve().parents[1] / 'configs' / '_base_' /
                       'datasets').glob('*.py'))


@pytest.mark.parametrize('path', DATA_CONFIGS, ids=lambda p: p.stem)
def test_dataset_configs_build_their_loaders_pipelines_and_metrics(path):
    """Datasets build lazily (no data needed); each evaluator spells out its protocol."""
    from corrkit.registry import DATASETS, METRICS
    cfg = load_config(path)
    loaders = [k for k in ('train_dataloader', 'val_dataloader', 'test_dataloader') if k in cfg]
    assert 'test_dataloader' in loaders
    for key in loaders:
        dataset = DATASETS.build(dict(cfg[key].dataset, lazy_init=True))
        steps = [type(t).__name__ for t in dataset.pipeline.transforms]
        assert steps[0] == 'LoadPairImages' and steps[-1] == 'PackPairInputs'
        assert 'PairResize' in steps
        assert ('PairPhotometricAugment' in steps) == (key == 'train_dataloader')
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
        else [cfg.test_evaluator]
    for spec in evaluators:
        assert {'alphas', 'threshold', 'average'} <= set(spec)
        METRICS.build(spec)


def test_benchmark_protocols():
    root = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'datasets'
    thresholds = {p.stem: [e.threshold for e in (c if isinstance(c, list) else [c])]
                  for p in root.glob('*.py') for c in [load_config(p).test_evaluator]}
    assert thresholds == {'spair': ['bbox'], 'mini_spair': ['bbox'], 'pfpascal': ['img'],
                          'pfwillow': ['bbox-kp', 'bbox-kp-padded'], 'ap10k': ['bbox']}


CONFIG_DIR = Path(__file__).resolve().parents[1] / 'configs'


def test_dinov2_zeroshot_config_spells_out_its_protocol():
    cfg = load_config(CONFIG_DIR / 'dinov2_zeroshot_spair.py')
    backbone = cfg.model.backbone
    assert cfg.model.type == 'KeypointMatcher' and cfg.model.pose_alignment is True
    assert backbone.model_name.startswith('vit_base_patch14_dinov2')
    assert backbone.pretrained is True and backbone['freeze'] is True  # a ConfigDict method
    assert cfg.model.input_size == 840 and 840 // 14 == 60  # the 60 x 60 grid
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'PairResize']
    assert resize == [dict(type='PairResize', size=840, keep_ratio=True)]
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert (evaluator.frame, evaluator.threshold) == ('original', 'bbox')


@pytest.mark.parametrize('name', ['dinov2_adapter_spair', 'keypoint_mobilenetv2_mini'])
def test_adapter_configs_train_the_neck_only(name):
    cfg = load_config(CONFIG_DIR / f'{name}.py')
    assert cfg.model.neck.type == 'AggregationNeck'
    assert cfg.model.backbone['freeze'] is True
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0
    assert cfg.model.loss.type == 'KeypointCrossEntropyLoss'


def test_dinov2_config_offline_names_file_cache_and_pretrained_path(tmp_path, repo):
    """Offline with an empty cache, building the zero-shot config says how to get weights."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, HF_HUB_OFFLINE='1', HF_HOME=str(tmp_path / 'hf'),
               PYTHONPATH=str(repo))
    code = ("from corrkit.apis import init_matcher\n"
            "init_matcher('configs/dinov2_zeroshot_spair.py')\n")
    proc = subprocess.run([sys.executable, '-c', code], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'vit_base_patch14_dinov2.lvd142m' in proc.stderr
    assert 'huggingface.co/timm/vit_base_patch14_dinov2.lvd142m' in proc.stderr  # the file
    assert 'HF_HOME' in proc.stderr  # the cache
    assert 'model.backbone.pretrained=' in proc.stderr  # pretrained=PATH
