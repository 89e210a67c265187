"""Every row of the paper's ablation tables has a config with exactly the row's settings,
and the ablation guide maps each row to its config."""
from pathlib import Path

import pytest

from corrkit.config import load_config

ROOT = Path(__file__).resolve().parents[1]
AUGMENTATIONS = {'PairRandomCrop', 'PairPhotometricAugment', 'PairFlip'}

# (table, row, config, expected settings); rows that share a model share a config.
SPAIR, PASCAL, WILLOW = 'SPairDataset', 'PFPascalDataset', 'PFWillowDataset'
FLAGSHIP = dict(aug=True, position='rope', attention='AdditiveAttention',
                correlation='MultiChannelCorrelation', train=SPAIR, test=SPAIR)
ABS_NOAUG = dict(FLAGSHIP, aug=False, position='absolute')
ROWS = [
    ('Table 2', 'SPair-71k, augmentation, absolute', 'transformatcher_abspos_spair.py',
     dict(FLAGSHIP, position='absolute')),
    ('Table 2', 'SPair-71k, absolute', 'ablations/transformatcher_abspos_noaug_spair.py',
     ABS_NOAUG),
    ('Table 2', 'SPair-71k, rotary', 'ablations/transformatcher_noaug_spair.py',
     dict(FLAGSHIP, aug=False)),
    ('Table 2', 'SPair-71k, augmentation, rotary', 'transformatcher_spair.py', FLAGSHIP),
    ('Table 2', 'PF-PASCAL, augmentation, absolute', 'ablations/transformatcher_abspos_pfpascal.py',
     dict(FLAGSHIP, position='absolute', train=PASCAL, test=PASCAL)),
    ('Table 2', 'PF-PASCAL, absolute', 'ablations/transformatcher_abspos_noaug_pfpascal.py',
     dict(ABS_NOAUG, train=PASCAL, test=PASCAL)),
    ('Table 2', 'PF-PASCAL, rotary', 'ablations/transformatcher_noaug_pfpascal.py',
     dict(FLAGSHIP, aug=False, train=PASCAL, test=PASCAL)),
    ('Table 2', 'PF-PASCAL, augmentation, rotary', 'transformatcher_pfpascal.py',
     dict(FLAGSHIP, train=PASCAL, test=PASCAL)),
    ('Table 3', 'Transformer', 'ablations/transformatcher_softmax_spair.py',
     dict(ABS_NOAUG, attention='SoftmaxAttention')),
    ('Table 3', 'Linformer', 'ablations/transformatcher_linformer_spair.py',
     dict(ABS_NOAUG, attention='LinformerAttention')),
    ('Table 3', 'Performer', 'ablations/transformatcher_performer_abspos_spair.py',
     dict(ABS_NOAUG, attention='PerformerAttention')),
    ('Table 3', 'Additive', 'ablations/transformatcher_abspos_noaug_spair.py', ABS_NOAUG),
    ('Table A2', 'Single concat', 'ablations/transformatcher_concat_spair.py',
     dict(FLAGSHIP, correlation='ConcatCorrelation')),
    ('Table A2', 'Single mean', 'ablations/transformatcher_mean_spair.py',
     dict(FLAGSHIP, correlation='MeanCorrelation')),
    ('Table A2', 'Multi', 'transformatcher_spair.py', FLAGSHIP),
    ('Table 1', 'SPair-71k (F)', 'ablations/transformatcher_noaug_spair.py',
     dict(FLAGSHIP, aug=False)),
    ('Table 1', 'SPair-71k (F), augmentation', 'transformatcher_spair.py', FLAGSHIP),
    ('Table 1', 'PF-PASCAL (F)', 'ablations/transformatcher_noaug_pfpascal.py',
     dict(FLAGSHIP, aug=False, train=PASCAL, test=PASCAL)),
    ('Table 1', 'PF-PASCAL (F), augmentation', 'transformatcher_pfpascal.py',
     dict(FLAGSHIP, train=PASCAL, test=PASCAL)),
    ('Table 1', 'SPair-71k (T)', 'ablations/transformatcher_pfpascal_to_spair.py',
     dict(FLAGSHIP, train=PASCAL, test=SPAIR)),
    ('Table 1', 'PF-WILLOW (T)', 'ablations/transformatcher_pfpascal_to_pfwillow.py',
     dict(FLAGSHIP, train=PASCAL, test=WILLOW)),
]


def settings(cfg) -> dict:
    """The settings the ablation tables vary, read from a loaded config."""
    steps = {t['type'] for t in cfg.train_dataloader.dataset.pipeline}
    refiner = cfg.model.refiner
    return dict(aug=bool(steps & AUGMENTATIONS), position=refiner.get('position', 'rope'),
                attention=refiner.get('attention', {}).get('type', 'AdditiveAttention'),
                correlation=cfg.model.correlation.type,
                train=cfg.train_dataloader.dataset.type, test=cfg.test_dataloader.dataset.type)


@pytest.mark.parametrize('table,row,config,expected', ROWS, ids=[f'{t}-{r}' for t, r, *_ in ROWS])
def test_ablation_config_has_the_rows_settings(table, row, config, expected):
    assert settings(load_config(ROOT / 'configs' / config)) == expected


def test_every_ablation_config_is_a_row_and_is_in_the_guide():
    shipped = {str(p.relative_to(ROOT / 'configs'))
               for p in (ROOT / 'configs' / 'ablations').glob('*.py')}
    assert shipped <= {config for _, _, config, _ in ROWS}
    guide = (ROOT / 'docs' / 'guides' / 'ablations.md').read_text()
    for table, row, config, _ in ROWS:
        lines = [line for line in guide.splitlines() if f'configs/{config}' in line]
        assert any(row in line and line.startswith('|') for line in lines), (table, row, config)


def test_transfer_configs_use_the_target_datasets_protocol():
    spair = load_config(ROOT / 'configs' / 'ablations' / 'transformatcher_pfpascal_to_spair.py')
    assert spair.test_evaluator.threshold == 'bbox'
    assert spair.test_dataloader.dataset.data_root == 'data/SPair-71k'
    willow = load_config(ROOT / 'configs' / 'ablations' / 'transformatcher_pfpascal_to_pfwillow.py')
    assert [e.threshold for e in willow.test_evaluator] == ['bbox-kp', 'bbox-kp-padded']
    assert willow.val_evaluator.threshold == 'img'  # validation stays on PF-PASCAL
    linformer = load_config(ROOT / 'configs' / 'ablations' / 'transformatcher_linformer_spair.py')
    assert linformer.model.refiner.attention.num_tokens == (linformer.model.input_size // 16) ** 4
