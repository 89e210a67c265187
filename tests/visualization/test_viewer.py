import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from corrkit.visualization import write_match_viewer

DATA_BLOCK = re.compile(r'<script type="application/json" id="corrkit-data">(.*?)</script>', re.S)
#: The affine map from source grid points to their predicted targets.
AFFINE = np.array([[0.7, 0.1, 20.0], [-0.05, 0.8, 10.0]])


def embedded(path: Path) -> dict:
    return json.loads(DATA_BLOCK.search(path.read_text()).group(1))


def picture(size, seed):
    rng = np.random.default_rng(seed)
    img = Image.new('RGB', size, (40, 60, 90))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        draw.ellipse([x, y, x + 30, y + 20], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def pair_inputs(src_size=(300, 200), heat_size=(12, 10), n_kps=4, seed=0):
    """Viewer arguments: a 5 x 7 source grid mapped by AFFINE, random maps and keypoints."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(0.1, 0.9, 7) * src_size[0]
    ys = np.linspace(0.1, 0.9, 5) * src_size[1]
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    src_kps = rng.uniform(10, 150, (n_kps, 2))
    return dict(src_kps=src_kps, trg_kps=src_kps @ AFFINE[:, :2].T + AFFINE[:, 2],
                confidence=rng.uniform(0, 1, n_kps), grid_src=grid,
                grid_trg=grid @ AFFINE[:, :2].T + AFFINE[:, 2],
                heatmaps=rng.uniform(0, 1, (len(grid),) + heat_size))


def write(tmp_path, src_size=(300, 200), trg_size=(260, 180), **kwargs):
    args = pair_inputs(src_size) | kwargs
    return write_match_viewer(tmp_path / 'out' / 'viewer.html', picture(src_size, 1),
                              picture(trg_size, 2), **args)


def test_page_is_self_contained_and_embeds_the_data(tmp_path):
    path = write(tmp_path, title='<b>pair</b>', meta={'model': 'x<y', 'epoch': 3})
    text = path.read_text()
    assert path == tmp_path / 'out' / 'viewer.html'
    for external in ('http://', 'https://', 'src="//'):
        assert external not in text
    assert '&lt;b&gt;pair&lt;/b&gt;' in text and '<b>pair' not in text
    assert 'model: x&lt;y · epoch: 3' in text
    data = embedded(path)
    assert (data['src']['width'], data['trg']['height'], data['src']['scale']) == (300, 180, 1.0)
    assert len(data['grid']['src']) == 35 and len(data['keypoints']['confidence']) == 4
    assert data['src']['url'].startswith('data:image/jpeg;base64,')
    assert not list(path.parent.glob('.*.tmp'))


def test_placeholders_in_the_title_and_meta_stay_text(tmp_path):
    every = '__TITLE__ __META__ __DATA__'
    plain = embedded(write(tmp_path / 'plain', title='t', meta={'checkpoint': 'c.pth'}))
    path = write(tmp_path, title=f'<{every}>', meta={'checkpoint': f'/runs/{every}/e.pth'})
    text = path.read_text()
    assert embedded(path) == plain  # the page's JSON is intact and embedded once
    assert len(DATA_BLOCK.findall(text)) == 1 and text.count(plain['src']['url']) == 1
    assert f'<title>&lt;{every}&gt;</title>' in text and f'<h1>&lt;{every}&gt;</h1>' in text
    assert f'<div class="meta">checkpoint: /runs/{every}/e.pth</div>' in text


def test_large_images_are_shrunk_with_their_coordinates(tmp_path):
    args = pair_inputs((2048, 1000))
    path = write(tmp_path, src_size=(2048, 1000), **args)
    data = embedded(path)
    src = Image.open(io.BytesIO(base64.b64decode(data['src']['url'].split(',', 1)[1])))
    assert src.size == (1024, 500) == (data['src']['width'], data['src']['height'])
    assert data['src']['scale'] == 0.5 and data['trg']['scale'] == 1.0
    # pixel centres scale as in ops.coords.rescale_points: (x + 0.5) * s - 0.5
    np.testing.assert_allclose(data['grid']['src'], (args['grid_src'] + 0.5) * 0.5 - 0.5,
                               atol=1e-3)
    np.testing.assert_allclose(data['keypoints']['src'], (args['src_kps'] + 0.5) * 0.5 - 0.5,
                               atol=1e-3)
    np.testing.assert_allclose(data['grid']['trg'], args['grid_trg'], atol=1e-3)


def test_heat_maps_are_pooled_and_min_max_normalised(tmp_path):
    heat = torch.rand(35, 96, 64) + 2.0
    data = embedded(write(tmp_path, heatmaps=heat))
    g, th, tw = data['heatmaps']['shape']
    assert (g, th, tw) == (35, 48, 32)
    maps = np.frombuffer(base64.b64decode(data['heatmaps']['data']), np.uint8).reshape(g, th, tw)
    assert (maps.max(axis=(1, 2)) == 255).all() and (maps.min(axis=(1, 2)) == 0).all()


def test_tensors_and_no_keypoints_are_accepted(tmp_path):
    args = {k: torch.as_tensor(v) for k, v in pair_inputs().items()}
    data = embedded(write(tmp_path, **args | dict(src_kps=[], trg_kps=torch.zeros(0, 2),
                                                  confidence=[])))
    assert data['keypoints'] == {'src': [], 'trg': [], 'confidence': []}


@pytest.mark.parametrize('name, value, expected', [
    ('src_kps', np.zeros((4, 3)), r'\(N, 2\), got \(4, 3\)'),
    ('trg_kps', np.zeros((3, 2)), r'\(4, 2\), got \(3, 2\)'),
    ('confidence', np.zeros((4, 1)), r'\(4,\), got \(4, 1\)'),
    ('grid_src', np.zeros(35), r'\(N, 2\), got \(35,\)'),
    ('grid_trg', np.zeros((34, 2)), r'\(35, 2\), got \(34, 2\)'),
    ('heatmaps', np.zeros((35, 8)), r'\(35, th, tw\), got \(35, 8\)'),
    ('heatmaps', -np.ones((35, 4, 4)), 'non-negative'),
    ('src_kps', np.full((4, 2), np.nan), 'finite'),
])
def test_bad_arguments_are_named(tmp_path, name, value, expected):
    with pytest.raises(ValueError, match=f'{name} must.*{expected}'):
        write(tmp_path, **{name: value})
    assert not (tmp_path / 'out' / 'viewer.html').exists()


MAGENTA_CENTROID = """([id, x0, y0]) => {
  const c = document.getElementById(id), r = 8;
  const d = c.getContext('2d').getImageData(x0 - r, y0 - r, 2 * r, 2 * r).data;
  let sx = 0, sy = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 200 && d[i + 1] < 60 && d[i + 2] > 200 && d[i + 3] > 200) {
      const p = i / 4; sx += p % (2 * r) + 0.5; sy += Math.floor(p / (2 * r)) + 0.5; n++;
    }
  }
  return n ? [x0 - r + sx / n, y0 - r + sy / n, n] : null;
}"""


@pytest.mark.parametrize('viewport_width', [1280, 420])  # full size, then scaled down by CSS
def test_clicking_the_source_marks_the_predicted_target(tmp_path, browser_page, viewport_width):
    page, errors = browser_page
    page.set_viewport_size({'width': viewport_width, 'height': 800})
    requests = []
    page.on('request', lambda r: requests.append(r.url))
    args = pair_inputs()
    path = write(tmp_path, **args)
    page.goto(path.as_uri())
    page.wait_for_function('document.body.dataset.ready === "true"', timeout=10_000)

    overlay = page.locator('#src-overlay')
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    width, height = page.evaluate('[src.width, src.height]'.replace(
        'src', "document.getElementById('src-overlay')"))
    if viewport_width < 600:
        assert box['width'] < width - 50  # the page really is zoomed out
    trg_before = page.evaluate("document.getElementById('trg-image').toDataURL()")
    for k in (0, 17, 34):
        x, y = args['grid_src'][k] + [4.0, -3.0]  # near grid point k, not on it
        page.mouse.click(box['x'] + x * box['width'] / width,
                         box['y'] + y * box['height'] / height)
        marker = page.locator('#trg-marker')
        assert marker.get_attribute('data-index') == str(k)
        expected = args['grid_trg'][k]
        got = [float(marker.get_attribute(a)) for a in ('data-x', 'data-y')]
        np.testing.assert_allclose(got, expected, atol=1.0)
        drawn = page.evaluate(MAGENTA_CENTROID, ['trg-overlay', *map(round, expected)])
        assert drawn is not None, f'no target marker drawn near {expected}'
        np.testing.assert_allclose(drawn[:2], expected, atol=1.0)
    assert page.evaluate("document.getElementById('trg-image').toDataURL()") != trg_before

    row = page.locator('#kp-table tbody tr').nth(1)
    row.hover()
    assert 'highlight' in row.get_attribute('class')
    assert page.evaluate('window.corrkitViewer.state.highlight') == 1
    page.locator('h1').hover()
    assert page.evaluate('window.corrkitViewer.state.highlight') == -1

    assert not [u for u in requests if not u.startswith(('file:', 'data:'))]
    assert not errors
