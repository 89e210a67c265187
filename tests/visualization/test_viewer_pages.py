"""The page `corrkit match --html` writes for a real model, opened in headless Chromium."""
import os
from pathlib import Path

import numpy as np

from corrkit.apis import init_matcher, match_pair
from corrkit.apis.demo import run_demo
from corrkit.utils.sample_data import ASTRONAUT_KPS, sample_pair
from tests.visualization.test_viewer import MAGENTA_CENTROID, embedded


def click_source(page, point):
    """Click the source canvas at ``point``, pixels of the embedded source image."""
    overlay = page.locator('#src-overlay')
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    width, height = page.evaluate("[document.getElementById('src-overlay').width, "
                                  "document.getElementById('src-overlay').height]")
    x, y = (float(v) for v in point)
    page.mouse.click(box['x'] + x * box['width'] / width, box['y'] + y * box['height'] / height)


def test_clicking_a_source_point_marks_the_models_prediction(tmp_path, browser_page):
    """The marker lands on the target pixel match_pair predicts for the clicked grid point
    (within a pixel), with the model's own scores drawn, and the page logs no error."""
    page, errors = browser_page
    src, trg = sample_pair()
    paths = run_demo(src, trg, 'zeroshot_mobilenetv2', kps=ASTRONAUT_KPS,
                     out_dir=tmp_path, html=True)
    data = embedded(paths['html'])
    grid = match_pair(init_matcher('zeroshot_mobilenetv2'), src, trg, None, scores=True)
    assert len(data['grid']['src']) == len(grid.src_kps)  # a 30 x 30 flow grid, all of it
    assert len(data['keypoints']['src']) == len(ASTRONAUT_KPS)
    page.goto(paths['html'].as_uri())
    page.wait_for_function('document.body.dataset.ready === "true"', timeout=10_000)
    for k in (100, 465, 801):
        click_source(page, grid.src_kps[k].numpy() * data['src']['scale'])
        marker = page.locator('#trg-marker')
        assert marker.get_attribute('data-index') == str(k)
        expected = grid.trg_kps[k].numpy() * data['trg']['scale']
        got = [float(marker.get_attribute(a)) for a in ('data-x', 'data-y')]
        np.testing.assert_allclose(got, expected, atol=1.0)
        drawn = page.evaluate(MAGENTA_CENTROID, ['trg-overlay', *map(round, expected)])
        assert drawn is not None, f'no marker drawn near {expected}'
        np.testing.assert_allclose(drawn[:2], expected, atol=1.0)
    if os.environ.get('CORRKIT_SCREENSHOT_DIR'):  # the docs' picture (docs/guides/package.md)
        click_source(page, np.array(ASTRONAUT_KPS[2]) * data['src']['scale'])
        folder = Path(os.environ['CORRKIT_SCREENSHOT_DIR'])
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / 'viewer.jpg'), full_page=True, type='jpeg', quality=80)
    assert not errors


def test_a_fine_flow_grid_is_subsampled_for_the_page(tmp_path):
    from corrkit.apis.demo import write_viewer
    src, trg = sample_pair()
    model = init_matcher('transformatcher_tiny')
    result = match_pair(model, src, trg, ASTRONAUT_KPS[:3], scores=True)
    full = match_pair(model, src, trg, None, scores=True)
    hf, wf = full.scores.shape[:2]
    page = write_viewer(src, trg, result, tmp_path / 'page.html', grid_side=3)
    data = embedded(page)
    step_h, step_w = -(-hf // 3), -(-wf // 3)
    kept = [(i, j) for i in range(0, hf, step_h) for j in range(0, wf, step_w)]
    assert len(data['grid']['src']) == len(kept) < hf * wf
    first = np.array(data['grid']['trg'][1]) / data['trg']['scale']
    i, j = kept[1]
    np.testing.assert_allclose(first, full.trg_kps[i * wf + j].numpy(), atol=0.01)
