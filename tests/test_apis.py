import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.apis import init_matcher, load_weights, match_pair
from corrkit.models import CorrelationMatcher, MatchOutputs
from corrkit.ops import normalized_grid, normalized_to_pixel, rescale_points
from tests.conftest import TINY_MATCHER


class ZeroFlowMatcher(CorrelationMatcher):
    """Predicts that every source cell lands on the same place in the target: the tiny
    matcher with its correlation, refiner and head replaced by a constant answer, so
    match_pair is tested through the real encode and keypoint transfer."""

    def __init__(self):
        super().__init__(**{k: v for k, v in TINY_MATCHER.items() if k != 'type'})
        self.input_size = (16, 16)

    def correspond(self, src, trg):
        b = len(src)
        probs = torch.full((b, 8, 8, 8, 8), 1 / 64)
        return MatchOutputs(None, None, torch.zeros(b, 2, 8, 8), probs)


def test_match_pair_maps_points_through_both_resizes():
    src = np.zeros((30, 50, 3), dtype=np.uint8)
    trg = np.zeros((90, 40, 3), dtype=np.uint8)
    result = match_pair(ZeroFlowMatcher(), src, trg)
    grid = normalized_to_pixel(normalized_grid(8, 8).flatten(1).T, (16, 16))
    torch.testing.assert_close(result.src_kps, rescale_points(grid, (16, 16), (30, 50)))
    torch.testing.assert_close(result.trg_kps, rescale_points(grid, (16, 16), (90, 40)))
    assert result.src_size == (30, 50) and result.trg_size == (90, 40)
    torch.testing.assert_close(result.confidence, torch.full((64,), 1 / 64))


def test_match_pair_accepts_paths_modes_and_keypoints(tiny_matcher, tmp_path):
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 255, (50, 70, 4), dtype=np.uint8), 'RGBA')
    path = tmp_path / 'grey.png'
    Image.fromarray(rng.integers(0, 255, (40, 33), dtype=np.uint8)).save(path)
    kps = [[0, 0], [69, 49], [35.5, 20.25]]
    result = match_pair(tiny_matcher, rgba, str(path), kps)
    assert result.trg_kps.shape == (3, 2) and result.flow.shape == (2, 8, 8)
    torch.testing.assert_close(result.src_kps, torch.tensor(kps, dtype=torch.float32))
    # predictions land inside the target image (pixel areas span [-0.5, size - 0.5])
    assert (result.trg_kps[:, 0] >= -0.5).all() and (result.trg_kps[:, 0] <= 32.5).all()
    assert (result.trg_kps[:, 1] >= -0.5).all() and (result.trg_kps[:, 1] <= 39.5).all()
    with pytest.raises(ValueError, match=r'\(N, 2\)'):
        match_pair(tiny_matcher, rgba, str(path), [1, 2, 3])


def test_checkpoint_round_trip_and_mismatch(repo, tmp_path, tiny_matcher):
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': tiny_matcher.state_dict(), 'meta': {'epoch': 1}}, path)
    torch.manual_seed(123)
    loaded = init_matcher(repo / 'configs' / 'transformatcher_tiny.py', checkpoint=str(path))
    for a, b in zip(tiny_matcher.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    other = init_matcher(repo / 'configs' / 'transformatcher_tiny.py',
                         cfg_options={'model.refiner.depth': 1})
    with pytest.raises(RuntimeError, match=r'unexpected keys \[.refiner.blocks.1'):
        load_weights(other, path)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_weights(other, tmp_path / 'missing.pth')


@pytest.fixture(scope='module')
def mini_data(tmp_path_factory):
    from corrkit.datasets import make_mini_dataset
    return make_mini_dataset(tmp_path_factory.mktemp('data') / 'mini', image_size=64,
                             views={'trn': 1, 'val': 1, 'test': 1}, num_keypoints=6)


def mini_options(root):
    return {'test_dataloader.dataset.data_root': str(root), 'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False, 'test_dataloader.batch_size': 2,
            'test_dataloader.dataset.pipeline.1.size': 32}


def test_evaluate_loads_the_checkpoint_it_is_given(repo, tmp_path, tiny_matcher, mini_data):
    from corrkit.apis import evaluate
    config = repo / 'configs' / 'transformatcher_tiny.py'
    path = tmp_path / 'tiny.pth'
    torch.save({'state_dict': tiny_matcher.state_dict()}, path)
    first = evaluate(config, str(path), str(tmp_path / 'a'), mini_options(mini_data))
    second = evaluate(config, str(path), str(tmp_path / 'b'), mini_options(mini_data))
    assert set(first) == {'PCK@0.05', 'PCK@0.1', 'PCK@0.15'}
    assert first == second  # same weights, same numbers
    assert (tmp_path / 'a' / 'pck_bbox.json').is_file()
    torch.save({'state_dict': {'refiner.nope': torch.zeros(1)}}, tmp_path / 'bad.pth')
    with pytest.raises(RuntimeError, match='refiner.nope'):
        evaluate(config, str(tmp_path / 'bad.pth'), str(tmp_path / 'c'), mini_options(mini_data))


def test_evaluate_needs_a_test_split(tmp_path):
    from corrkit.apis import evaluate
    with pytest.raises(KeyError, match="no \\['test_dataloader', 'test_evaluator', 'test_cfg'\\]"):
        evaluate(dict(model=dict(type='CorrelationMatcher')), work_dir=str(tmp_path))


def test_checkpoint_may_be_a_training_work_dir(tmp_path):
    from corrkit.apis import resolve_checkpoint
    (tmp_path / 'epoch_3.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text('/elsewhere/run/epoch_3.pth')
    assert resolve_checkpoint(tmp_path) == tmp_path / 'epoch_3.pth'  # the folder moved
    assert resolve_checkpoint(tmp_path / 'epoch_3.pth') == tmp_path / 'epoch_3.pth'
    with pytest.raises(FileNotFoundError, match="without a 'last_checkpoint'"):
        resolve_checkpoint(tmp_path / 'x' if (tmp_path / 'x').mkdir() is None else None)
