"""PCKMetric on hand-computed cases."""
import json
import math

import pytest
import torch
from mmengine.evaluator import Evaluator

from corrkit.evaluation import PCKMetric, pck_reference_sizes
from corrkit.evaluation.report import category_table, difficulty_table, summarize
from corrkit.registry import METRICS
from corrkit.structures import PairDataSample


def pair(errors, valid=None, category='cat', ref=None, **meta):
    """A pair whose predictions sit ``errors`` pixels (dx, dy) from the truth."""
    errors = torch.tensor(errors, dtype=torch.float32)
    gt = torch.arange(len(errors) * 2, dtype=torch.float32).reshape(-1, 2) * 10
    sample = PairDataSample(src_kps=gt.clone(), trg_kps=gt, pred_trg_kps=gt + errors,
                            kps_valid=torch.ones(len(errors), dtype=torch.bool)
                            if valid is None else torch.tensor(valid))
    sample.set_metainfo(dict(category=category, pair_id=f'{category}-{len(errors)}',
                             pck_ref_sizes=ref or {'img': 240.0, 'bbox': 100.0,
                                                   'bbox-kp': 50.0, 'bbox-kp-padded': 80.0},
                             **meta))
    return sample


def evaluate(metric, samples):
    metric.results.clear()
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_boundary_is_inclusive():
    metric = PCKMetric(alphas=(0.1,), threshold='bbox')
    assert evaluate(metric, [pair([[6.0, 8.0]])]) == {'PCK@0.1': 100.0}  # exactly 10 px
    assert evaluate(metric, [pair([[6.0, 8.01]])]) == {'PCK@0.1': 0.0}


def test_invalid_keypoints_do_not_count():
    metric = PCKMetric(alphas=(0.1,), threshold='bbox')
    sample = pair([[0.0, 0.0], [500.0, 0.0]], valid=[True, False])
    assert evaluate(metric, [sample]) == {'PCK@0.1': 100.0}


@pytest.mark.parametrize('threshold, expected', [
    ('img', [100.0, 100.0]), ('bbox', [0.0, 100.0]), ('bbox-kp', [0.0, 0.0]),
    ('bbox-kp-padded', [0.0, 100.0])])
def test_each_threshold_uses_its_reference_size(threshold, expected):
    # 7 px error: correct when alpha * ref >= 7, i.e. ref >= 140 at 0.05 and >= 70 at 0.1
    metric = PCKMetric(alphas=(0.05, 0.1), threshold=threshold)
    result = evaluate(metric, [pair([[7.0, 0.0]])])
    assert [result['PCK@0.05'], result['PCK@0.1']] == expected


def test_per_pair_and_per_keypoint_averages_differ_as_computed_by_hand():
    samples = [pair([[0.0, 0.0]]),  # 1 of 1 correct
               pair([[0.0, 0.0], [50.0, 0.0], [50.0, 0.0]], category='dog')]  # 1 of 3
    per_pair = evaluate(PCKMetric(alphas=(0.1,), threshold='bbox', average='pair'), samples)
    per_kp = evaluate(PCKMetric(alphas=(0.1,), threshold='bbox', average='keypoint'), samples)
    assert per_pair['PCK@0.1'] == pytest.approx(100 * (1 + 1 / 3) / 2)
    assert per_kp['PCK@0.1'] == pytest.approx(100 * 2 / 4)


def test_per_category_and_per_difficulty_tables_and_json(tmp_path):
    samples = [
        pair([[0.0, 0.0]], category='cat', truncation=0, occlusion=3, viewpoint_variation=2),
        pair([[50.0, 0.0]], category='cat', truncation=1, occlusion=0, viewpoint_variation=2),
        pair([[0.0, 0.0], [50.0, 0.0]], category='dog', truncation=2, occlusion=0,
             viewpoint_variation=0),
    ]
    metric = PCKMetric(alphas=(0.1,), threshold='bbox', out_dir=str(tmp_path))
    assert evaluate(metric, samples)['PCK@0.1'] == pytest.approx(100 * (1 + 0 + 0.5) / 3)
    report = json.loads((tmp_path / 'pck_bbox.json').read_text())
    assert report['threshold'] == 'bbox' and report['average'] == 'pair'
    assert len(report['pairs_digest']) == 16
    assert report['per_category']['cat'] == {'0.1': 50.0, 'pairs': 2}
    assert report['per_category']['dog'] == {'0.1': 50.0, 'pairs': 1}
    difficulty = report['per_difficulty']
    # SPair's levels: truncation / occlusion 0 none, 1 source, 2 target, 3 both
    assert difficulty['truncation'] == {'none': {'0.1': 100.0, 'pairs': 1},
                                        'src': {'0.1': 0.0, 'pairs': 1},
                                        'trg': {'0.1': 50.0, 'pairs': 1}}
    assert difficulty['occlusion'] == {'none': {'0.1': 25.0, 'pairs': 2},
                                       'both': {'0.1': 100.0, 'pairs': 1}}
    assert difficulty['viewpoint_variation']['hard']['pairs'] == 2
    assert 'scale_variation' not in difficulty
    assert report['num_pairs'] == 3 and report['num_keypoints'] == 4


def test_tables_have_table_a1_shape():
    records = [dict(category=c, num_valid=2, correct=[1, 2], truncation=t)
               for c, t in (('aeroplane', 0), ('bicycle', 3))]
    summary = summarize(records, (0.05, 0.1), 'pair')
    lines = category_table(summary, (0.05, 0.1)).splitlines()
    assert lines[0].split() == ['alpha', 'aeroplane', 'bicycle', 'all']
    assert lines[1].split() == ['0.05', '50.0', '50.0', '50.0']
    assert lines[2].split() == ['0.1', '100.0', '100.0', '100.0']
    rows = [line.split() for line in difficulty_table(summary, (0.05, 0.1)).splitlines()]
    assert rows[1] == ['truncation', 'none', '50.0', '100.0', '1']
    assert rows[2] == ['truncation', 'both', '50.0', '100.0', '1']


def test_through_mmengine_evaluator_with_a_prefix():
    evaluator = Evaluator([METRICS.build(dict(type='PCKMetric', alphas=(0.1,), threshold='img',
                                              prefix='willow'))])
    evaluator.process([pair([[30.0, 0.0]]), pair([[0.0, 0.0]])])
    assert evaluator.evaluate(2) == {'willow/PCK@0.1': 50.0}


def test_unavailable_reference_size_and_bad_settings_are_named():
    metric = PCKMetric(threshold='bbox')
    with pytest.raises(KeyError, match="no 'bbox' PCK reference size"):
        metric.process({}, [pair([[0.0, 0.0]], ref={'img': 240.0})])
    with pytest.raises(ValueError, match="unknown PCK threshold 'box'"):
        PCKMetric(threshold='box')
    with pytest.raises(ValueError, match="unknown PCK averaging 'image'"):
        PCKMetric(average='image')


def test_no_pairs_gives_nan_and_strict_json(tmp_path):
    metric = PCKMetric(alphas=(0.1,), threshold='img', out_dir=str(tmp_path))
    assert math.isnan(evaluate(metric, [pair([[0.0, 0.0]], valid=[False])])['PCK@0.1'])
    report = json.loads((tmp_path / 'pck_img.json').read_text())
    assert report['overall'] == {'0.1': None} and report['pairs_without_keypoints'] == 1


def test_one_record_per_pair_even_without_valid_keypoints():
    # mmengine's distributed collection drops the sampler's padding by counting records
    metric = PCKMetric(alphas=(0.1,), threshold='img')
    metric.process({}, [pair([[0.0, 0.0]]), pair([[0.0, 0.0]], valid=[False]), pair([[99.0, 0.0]])])
    assert len(metric.results) == 3
    result = metric.compute_metrics(metric.results)
    assert result == {'PCK@0.1': 50.0}


def test_reference_sizes_of_each_kind():
    kps = torch.tensor([[3.0, 4.0], [13.0, 30.0], [100.0, 100.0]])
    valid = torch.tensor([True, True, False])
    sizes = pck_reference_sizes((240, 320), kps, valid, torch.tensor([0.0, 10.0, 40.0, 30.0]))
    # padded: the box of the valid points and the sentinel (-2, -2): 30 - (-2)
    assert sizes == {'img': 320.0, 'bbox': 40.0, 'bbox-kp': 26.0, 'bbox-kp-padded': 32.0}
    assert 'bbox-kp' not in pck_reference_sizes((8, 8), kps, torch.zeros(3, dtype=torch.bool))


def test_report_hook_points_metrics_at_the_work_dir(tmp_path):
    from types import SimpleNamespace

    from corrkit.evaluation import PCKReportHook
    val, test, kept = PCKMetric(), PCKMetric(), PCKMetric(out_dir='mine')
    runner = SimpleNamespace(work_dir=str(tmp_path),
                             val_loop=SimpleNamespace(evaluator=SimpleNamespace(metrics=[val])),
                             test_loop=SimpleNamespace(evaluator=SimpleNamespace(
                                 metrics=[test, kept])))
    hook = PCKReportHook()
    hook.before_val(runner)
    hook.before_test(runner)
    assert val.out_dir == str(tmp_path / 'val') and test.out_dir == str(tmp_path)
    assert kept.out_dir == 'mine'


class _MiniLike:
    """A dataset that says what it measures, as corrkit's pair datasets do."""

    def __init__(self, split, categories):
        self.info = dict(dataset='SPairDataset', split=split, data_root='data/mini-spair',
                         pairs=2 * len(categories), categories=categories)

    def measured_on(self):
        return dict(self.info)


def test_report_hook_tells_each_metric_what_it_measures_and_notes_the_test_split(
        tmp_path, monkeypatch):
    from types import SimpleNamespace

    from corrkit.evaluation import PCKReportHook, report_hook
    said = []
    monkeypatch.setattr(report_hook, 'print_log', lambda message, **_: said.append(message))
    val, test, kept = PCKMetric(), PCKMetric(), PCKMetric(out_dir='mine')
    data = dict(type='SPairDataset', data_root='data/mini-spair')
    cfg = dict(val_dataloader=dict(dataset=dict(data, split='val')),
               test_dataloader=dict(dataset=dict(data, split='test')))

    def loop(metrics, dataset):
        return SimpleNamespace(evaluator=SimpleNamespace(metrics=metrics),
                               dataloader=SimpleNamespace(dataset=dataset))
    runner = SimpleNamespace(
        work_dir=str(tmp_path), cfg=cfg,
        val_loop=loop([val], _MiniLike('val', ['camera', 'coins'])),
        test_loop=loop([test, kept], _MiniLike('test', ['chelsea', 'grace_hopper',
                                                        'motorcycle'])))
    hook = PCKReportHook()
    hook.before_val(runner)
    hook.before_val(runner)  # said once per run
    hook.before_test(runner)
    assert val.dataset_info['split'] == 'val' and val.dataset_info['categories'] == [
        'camera', 'coins']
    assert test.dataset_info['split'] == kept.dataset_info['split'] == 'test'
    assert said == ["validation measures split 'val' of SPairDataset at data/mini-spair: "
                    "4 pairs, categories camera, coins; tools/test.py measures split 'test' "
                    "of the same dataset, other images: expect a different PCK there"]
    # one split for both, or a config without a test loader: nothing to say
    from corrkit.evaluation.report_hook import validation_note
    assert validation_note(dict(cfg, test_dataloader=cfg['val_dataloader']), None) is None
    assert validation_note(dict(val_dataloader=cfg['val_dataloader']), None) is None
    assert validation_note(None, None) is None


def test_report_and_log_name_what_was_measured(tmp_path):
    from corrkit.evaluation.report import dataset_info
    metric = PCKMetric(alphas=(0.1,), threshold='bbox', out_dir=str(tmp_path))
    metric.dataset_info = dataset_info(_MiniLike('test', ['chelsea', 'grace_hopper']))
    evaluate(metric, [pair([[0.0, 0.0]], category='chelsea')])
    report = json.loads((tmp_path / 'pck_bbox.json').read_text())
    assert report['measured_on'] == dict(dataset='SPairDataset', split='test',
                                         data_root='data/mini-spair', pairs=4,
                                         categories=['chelsea', 'grace_hopper'])
    # without it (no hook, or a report of an older corrkit) the report has no such key
    evaluate(PCKMetric(alphas=(0.1,), threshold='bbox', out_dir=str(tmp_path)),
             [pair([[0.0, 0.0]])])
    assert 'measured_on' not in json.loads((tmp_path / 'pck_bbox.json').read_text())


def test_dataset_info_falls_back_to_what_a_dataset_has():
    from types import SimpleNamespace

    from corrkit.evaluation.report import dataset_info, describe_measured_on
    assert dataset_info(SimpleNamespace(split='val', data_root='d', other=1)) == dict(
        dataset='SimpleNamespace', split='val', data_root='d')
    assert dataset_info([]) == {'dataset': 'list'}
    many = dict(dataset='SPairDataset', split='test', pairs=12234,
                categories=[f'c{i:02d}' for i in range(18)])
    assert describe_measured_on(many) == ("split 'test' of SPairDataset: 12234 pairs, "
                                          "categories c00, c01, c02, c03, c04 and 13 more")


def test_comparison_refuses_reports_with_other_protocols():
    from corrkit.evaluation.report import comparison_table
    base = dict(threshold='bbox', average='pair', alphas=[0.1], num_pairs=1,
                overall={'0.1': 1.0})
    with pytest.raises(ValueError, match='different protocols'):
        comparison_table({'a': base, 'b': dict(base, threshold='img')})


def test_comparison_refuses_reports_of_different_pairs():
    from corrkit.evaluation.report import comparison_table, pairs_digest
    one = pairs_digest([{'pair_id': 'a'}, {'pair_id': 'b'}])
    assert one == pairs_digest([{'pair_id': 'b'}, {'pair_id': 'a'}])  # order-free
    other = pairs_digest([{'pair_id': 'a'}, {'pair_id': 'c'}])
    base = dict(threshold='bbox', average='pair', alphas=[0.1], num_pairs=2,
                overall={'0.1': 1.0}, pairs_digest=one)
    assert 'trained' in comparison_table({'zero-shot': base, 'trained': base})
    with pytest.raises(ValueError, match='different pairs'):
        comparison_table({'zero-shot': base, 'trained': dict(base, pairs_digest=other)})
    # reports that say what they measured name it in the refusal
    val = dict(base, measured_on=dict(dataset='SPairDataset', split='val'))
    test = dict(base, pairs_digest=other, measured_on=dict(dataset='SPairDataset', split='test'))
    with pytest.raises(ValueError, match="trained on split 'test' of SPairDataset"):
        comparison_table({'zero-shot': val, 'trained': test})


def test_measured_on_lines_say_one_split_or_warn_of_several():
    from corrkit.evaluation.report import measured_on_lines
    test = dict(dataset='SPairDataset', split='test', data_root='data/mini-spair', pairs=60,
                categories=['chelsea', 'grace_hopper', 'motorcycle'])
    assert measured_on_lines({'zero-shot': {'measured_on': test},
                              'trained': {'measured_on': test}}) == [
        "measured on split 'test' of SPairDataset at data/mini-spair: 60 pairs, "
        "categories chelsea, grace_hopper, motorcycle"]
    assert measured_on_lines({'old': {}, 'older': {}}) == []  # reports from before the key
    lines = measured_on_lines({'a': {'measured_on': test},
                               'b': {'measured_on': dict(test, split='val')}})
    assert lines[-1].startswith('warning: different splits or datasets') and len(lines) == 3


def _frame_sample(pred, frame=(2.0, 0.5, 0.5, -0.25)):
    """A pair whose target was stretched by 2 in x and squeezed by 2 in y (pixel centres)."""
    from corrkit.structures import PairDataSample
    ax, bx, ay, by = frame
    kps_original = torch.tensor([[10.0, 40.0], [30.0, 20.0]])
    kps_frame = torch.stack([ax * kps_original[:, 0] + bx, ay * kps_original[:, 1] + by], -1)
    sample = PairDataSample(src_kps=kps_frame, trg_kps=kps_frame,
                            kps_valid=torch.tensor([True, True]), pred_trg_kps=pred)
    sample.set_metainfo(dict(pck_ref_sizes={'img': 100.0}, trg_frame=frame,
                             trg_kps_original=kps_original,
                             pck_ref_sizes_original={'img': 100.0}))
    return sample, kps_frame


def test_original_frame_maps_predictions_back_before_measuring():
    """An error of 8 frame pixels along x is 4 original pixels (x was stretched by 2); along y
    it is 16 (y was squeezed by 2). At alpha 0.05 of 100 px (5 px) the frames disagree."""
    from corrkit.evaluation import PCKMetric
    sample, kps_frame = _frame_sample(None)
    sample.pred_trg_kps = kps_frame + torch.tensor([[8.0, 0.0], [0.0, 8.0]])
    scores = {}
    for frame in ('resized', 'original'):
        metric = PCKMetric(alphas=(0.05,), threshold='img', frame=frame)
        metric.process({}, [sample])
        scores[frame] = metric.compute_metrics(metric.results)['PCK@0.05']
    assert scores == {'resized': 0.0, 'original': 50.0}


def test_original_frame_refuses_a_pair_without_a_map_back():
    from corrkit.evaluation import PCKMetric
    from corrkit.structures import PairDataSample
    sample = PairDataSample(src_kps=torch.zeros(1, 2), trg_kps=torch.zeros(1, 2),
                            kps_valid=torch.tensor([True]), pred_trg_kps=torch.zeros(1, 2))
    sample.set_metainfo(dict(pair_id='p1', pck_ref_sizes={'img': 10.0}))
    with pytest.raises(KeyError, match=r"'p1' cannot be measured in the original image"):
        PCKMetric(threshold='img', frame='original').process({}, [sample])
    with pytest.raises(ValueError, match="unknown PCK frame 'raw'"):
        PCKMetric(frame='raw')


def test_the_validation_note_reads_splits_as_the_dataset_does():
    """A split left out is the class's default, and an alias is the name the files use."""
    import corrkit.datasets  # noqa: F401  (registers SPairDataset)
    from corrkit.evaluation.report_hook import validation_note
    spair = dict(type='SPairDataset', data_root='data/mini-spair')

    def note(val, test):
        return validation_note(dict(val_dataloader=dict(dataset=val),
                                    test_dataloader=dict(dataset=test)), None)

    assert note(spair, dict(spair, split='test')) is None  # SPairDataset's default is test
    assert note(dict(spair, split='train'), dict(spair, split='trn')) is None
    assert "split 'val'" in note(dict(spair, split='val'), spair)
    assert "measures split 'test' of the same dataset" in note(dict(spair, split='val'), spair)
