"""The review gallery of a keypoint-transfer run: its data and files, and the page in Chromium."""
import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from corrkit.visualization import GalleryItem, write_gallery
from corrkit.visualization import gallery as gallery_module

DATA_BLOCK = re.compile(
    r'<script type="application/json" id="corrkit-gallery-data">(.*?)</script>', re.S)
NAMES = {'cat': ['left ear', 'right ear', 'nose', 'tail'], 'dog': ['eye', 'paw']}
SKELETONS = {'cat': [(0, 1), (1, 2), (2, 3)], 'dog': [(0, 1)]}
HOSTILE = '<img src=x onerror=alert(1)>'
NAN = float('nan')


def embedded(path: Path) -> dict:
    return json.loads(DATA_BLOCK.search(path.read_text()).group(1))


def picture(path: Path, size, seed) -> Path:
    """A coloured test image of ``size`` (W, H) with a few ellipses, saved to ``path``."""
    rng = np.random.default_rng(seed)
    img = Image.new('RGB', size, tuple(int(c) for c in rng.integers(40, 120, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        draw.ellipse([x, y, x + size[0] // 4, y + size[1] // 5],
                     fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    img.save(path)
    return path


def item(target, title, points, scores, status, score, category='cat', reference=None,
         ref_points=None, ref_visible=None):
    return GalleryItem(
        target=target, title=title, category=category,
        keypoints=np.array(points, dtype=float), scores=np.array(scores, dtype=float),
        status=np.array(status), score=score, reference=reference,
        reference_keypoints=None if ref_points is None else np.array(ref_points, dtype=float),
        reference_visible=None if ref_visible is None else np.array(ref_visible))


@pytest.fixture
def case(tmp_path):
    """Three targets of distinct sizes, one broken file, one reference; a flagged point in two."""
    folder = tmp_path / 'targets'
    folder.mkdir()
    a = picture(folder / 'a.png', (120, 80), 0)
    b = picture(folder / 'b.png', (64, 96), 1)
    c = picture(folder / 'c.png', (100, 100), 2)
    broken = folder / 'broken.jpg'
    broken.write_bytes(b'not a JPEG at all')
    ref = picture(tmp_path / 'ref.png', (90, 60), 3)
    ref_kps = [[10.0, 12.0], [70.0, 14.0], [45.0, 30.0], [0.0, 0.0]]
    shared = dict(reference=ref, ref_points=ref_kps, ref_visible=[True, True, True, False])
    items = [
        item(a, 'a.png', [[0, 0], [119, 79], [60.4, 20.7], [NAN, NAN]],
             [0.9, 0.3, 0.8, NAN], [2, 1, 2, 0], 0.6, **shared),
        item(b, 'b.png', [[5.5, 90.25], [63, 0], [32, 48], [10, 10]],
             [0.95, 0.9, 0.7, 0.85], [2, 2, 2, 2], 0.85, **shared),
        item(c, 'c.png', [[50, 50], [99, 0], [20.5, 80.5], [0, 99]],
             [0.4, 0.2, 0.6, 0.7], [2, 1, 2, 2], 0.45, **shared),
        item(b, 'b.png', [[30, 40], [NAN, NAN]], [0.55, NAN], [2, 0], 0.55, category='dog'),
        item(broken, 'broken.jpg', [[1, 1], [2, 2], [3, 3], [4, 4]], [0.1, 0.1, 0.1, 0.1],
             [1, 1, 1, 1], 0.1, **shared),
    ]
    sizes = {0: (120, 80), 1: (64, 96), 2: (100, 100), 3: (64, 96)}
    return items, sizes, tmp_path


def decoded(url: str) -> Image.Image:
    assert url.startswith('data:image/jpeg;base64,')
    return Image.open(io.BytesIO(base64.b64decode(url.split(',', 1)[1])))


# ---------------------------------------------------------------- the file, without a browser

def test_data_block_carries_every_item_and_reads_each_image_once(case, monkeypatch):
    items, _, tmp = case
    calls = []
    real = gallery_module.load_image
    monkeypatch.setattr(gallery_module, 'load_image', lambda p: calls.append(p) or real(p))
    page = write_gallery(tmp / 'gallery.html', items, NAMES, SKELETONS, min_score=0.5)
    data = embedded(page)
    assert len(calls) == len(set(map(str, calls))) == 5  # a, b, c, broken, ref: once each
    assert data['min_score'] == 0.5
    assert data['categories']['cat'] == {'names': NAMES['cat'],
                                         'skeleton': [[0, 1], [1, 2], [2, 3]]}
    first = data['items'][0]
    assert first['title'] == 'a.png' and first['status'] == [2, 1, 2, 0]
    assert first['scores'] == [0.9, 0.3, 0.8, None] and first['points'][3] is None
    assert (first['accepted'], first['flagged'], first['score']) == (2, 1, 0.6)
    assert first['ref_points'][3] is None and first['ref_points'][0] == [10.0, 12.0]
    assert data['items'][1]['target'] == data['items'][3]['target']  # one image, two items
    target = data['images'][first['target']]
    assert (target['name'], target['width'], target['height']) == ('a.png', 120, 80)
    assert decoded(target['thumb']).size == (120, 80)
    assert '5 targets' in page.read_text()


def test_images_are_shrunk_to_the_thumbnail_and_large_sizes(tmp_path):
    big = picture(tmp_path / 'big.png', (600, 300), 0)
    page = write_gallery(tmp_path / 'g.html', [item(big, 'big', [[599, 299]], [0.9], [2], 0.9,
                                                    category='one')],
                         {'one': ['tip']}, {}, 0.5, thumb_size=64, large_size=200)
    image = embedded(page)['images'][0]
    assert (image['width'], image['height']) == (600, 300)  # the frame points are drawn in
    assert decoded(image['thumb']).size == (64, 32)
    assert decoded(image['large']).size == (200, 100)


def test_hostile_names_stay_text_and_cannot_close_the_data_block(tmp_path):
    target = picture(tmp_path / f'{HOSTILE}.png', (40, 30), 0)
    category = f'</script>{HOSTILE}'
    page = write_gallery(tmp_path / 'g.html',
                         [item(target, f'{HOSTILE}.png', [[3, 4]], [0.2], [1], 0.2,
                               category=category)],
                         {category: [f'</script><script>alert(2)</script>{HOSTILE}']}, {}, 0.5)
    text = page.read_text()
    assert '<img' not in text and 'alert(2)</script>' not in text
    assert text.count('</script>') == 2  # the data block's end and the code's
    data = embedded(page)
    assert data['items'][0]['title'] == f'{HOSTILE}.png'
    assert data['categories'][category]['names'][0].startswith('</script><script>')
    assert data['images'][0]['name'] == f'{HOSTILE}.png'


def test_folder_mode_writes_jpegs_beside_the_page_referenced_relatively(case):
    items, _, tmp = case
    page = write_gallery(tmp / 'out' / 'my review#1.html', items, NAMES, SKELETONS, 0.5,
                         thumbnails='folder', thumb_size=48)
    folder = tmp / 'out' / 'my review#1_files'
    text = page.read_text()
    assert 'data:image' not in text
    data = embedded(page)
    urls = [im[k] for im in data['images'] for k in ('thumb', 'large') if k in im]
    assert urls and all(u.startswith('my%20review%231_files/') for u in urls)
    for url in urls:
        file = folder / url.split('/', 1)[1]
        assert file.is_file() and max(Image.open(file).size) <= 120
    assert {Image.open(f).format for f in folder.iterdir()} == {'JPEG'}
    thumb = folder / data['images'][data['items'][0]['target']]['thumb'].split('/', 1)[1]
    assert Image.open(thumb).size == (48, 32)
    stale = folder / 'stale.jpg'
    stale.write_bytes(b'')
    write_gallery(page, items[:1], NAMES, SKELETONS, 0.5, thumbnails='folder')
    assert not stale.exists()  # the folder is replaced as a whole


def test_an_unreadable_image_becomes_a_placeholder(case):
    items, _, tmp = case
    missing = item(tmp / 'gone.png', 'gone.png', [[1, 1]] * 4, [0.9] * 4, [2] * 4, 0.9,
                   reference=tmp / 'gone-ref.png', ref_points=[[1, 1]] * 4)
    data = embedded(write_gallery(tmp / 'g.html', items + [missing], NAMES, SKELETONS, 0.5))
    broken = data['images'][data['items'][4]['target']]
    assert broken['name'] == 'broken.jpg' and 'broken.jpg' in broken['error']
    assert 'thumb' not in broken and 'large' not in broken
    gone = data['items'][5]
    assert 'does not exist' in data['images'][gone['target']]['error']
    assert 'does not exist' in data['images'][gone['reference']]['error']
    assert 'thumb' in data['images'][data['items'][0]['target']]  # the others are shown


def test_an_item_with_nothing_predicted(tmp_path):
    target = picture(tmp_path / 't.png', (30, 20), 0)
    page = write_gallery(tmp_path / 'g.html',
                         [item(target, 't.png', [[NAN, NAN]] * 2, [NAN, NAN], [0, 0], NAN,
                               category='dog')], NAMES, SKELETONS, 0.5)
    record = embedded(page)['items'][0]
    assert record['points'] == [None, None] and record['scores'] == [None, None]
    assert (record['accepted'], record['flagged'], record['score']) == (0, 0, None)


def test_no_items_says_there_is_nothing_to_show(tmp_path):
    page = write_gallery(tmp_path / 'g.html', [], {}, {}, 0.5)
    assert 'Nothing to show' in page.read_text() and embedded(page)['items'] == []


@pytest.mark.parametrize('change, message', [
    (dict(category='bird'), "category 'bird'"),
    (dict(status=np.array([2, 1, 3, 0])), 'status must be'),
    (dict(keypoints=np.zeros((3, 2))), 'keypoints must have shape (4, 2)'),
    (dict(scores=np.array([0.9, NAN, 0.8, NAN])), 'scores must be finite'),
])
def test_an_item_that_does_not_fit_its_category_is_named(case, change, message):
    items, _, tmp = case
    bad = GalleryItem(**{**vars(items[0]), **change})
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        write_gallery(tmp / 'g.html', [items[1], bad], NAMES, SKELETONS, 0.5)
    assert "items[1] ('a.png')" in str(err.value) or 'bird' in str(err.value)
    assert not (tmp / 'g.html').exists()


def test_bad_arguments_are_refused(case):
    items, _, tmp = case
    with pytest.raises(ValueError, match='thumbnails must be one of'):
        write_gallery(tmp / 'g.html', items, NAMES, SKELETONS, 0.5, thumbnails='zip')
    with pytest.raises(ValueError, match='outside its 4 keypoints'):
        write_gallery(tmp / 'g.html', items, NAMES, {'cat': [(0, 4)]}, 0.5)


# ---------------------------------------------------------------- the page in headless Chromium

def open_gallery(browser_page, page_path):
    page, errors = browser_page
    page.goto(page_path.as_uri())
    page.wait_for_function('document.body.dataset.ready === "true"', timeout=10_000)
    return page, errors


def shown_cards(page):
    return page.locator('.thumb:visible')


def centre(box):
    return box['x'] + box['width'] / 2, box['y'] + box['height'] / 2


def assert_points_on_pixels(page, scope, size):
    """Each drawn point's circle is centred on its pixel of the image shown in ``scope``."""
    image = page.locator(f'{scope} img').bounding_box()
    circles = page.locator(f'{scope} circle.point')
    assert circles.count() >= 1
    for k in range(circles.count()):
        circle = circles.nth(k)
        x, y = (float(circle.get_attribute(a)) for a in ('data-x', 'data-y'))
        # pixel centres at integers: the image spans [-0.5, W - 0.5] on screen
        expected = (image['x'] + (x + 0.5) / size[0] * image['width'],
                    image['y'] + (y + 0.5) / size[1] * image['height'])
        np.testing.assert_allclose(centre(circle.bounding_box()), expected, atol=1.5,
                                   err_msg=f'{scope} {circle.get_attribute("data-name")}')


def test_gallery_sorts_filters_and_opens_the_clicked_target(case, browser_page):
    items, sizes, tmp = case
    page, errors = open_gallery(browser_page, write_gallery(tmp / 'gallery.html', items, NAMES,
                                                            SKELETONS, min_score=0.5))
    cards = shown_cards(page)
    assert cards.count() == len(items)
    scores = lambda: [float(s) for s in cards.evaluate_all('cs => cs.map(c => c.dataset.score)')]
    assert scores() == sorted(scores()) == [0.1, 0.45, 0.55, 0.6, 0.85]  # worst first
    page.select_option('#sort', 'score-desc')
    assert scores() == sorted(scores(), reverse=True)
    page.select_option('#sort', 'name')
    titles = cards.evaluate_all('cs => cs.map(c => c.dataset.title)')
    assert titles == ['a.png', 'b.png', 'b.png', 'broken.jpg', 'c.png']
    assert page.locator('.thumb[data-index="4"] .placeholder').inner_text().count('broken.jpg')

    page.check('#flagged-only')
    flagged = cards.evaluate_all('cs => cs.map(c => +c.dataset.index)')
    assert sorted(flagged) == [0, 2, 4]  # b.png has no flagged point in either category
    page.uncheck('#flagged-only')
    assert cards.count() == len(items)

    page.select_option('#sort', 'score-asc')
    page.click('.thumb[data-index="2"]')
    large = page.locator('#large')
    assert large.is_visible() and large.get_attribute('data-index') == '2'
    assert page.locator('#large-title').inner_text() == 'c.png'
    assert page.locator('#large-reference').get_attribute('data-name') == 'ref.png'
    assert page.locator('#large-reference img').is_visible()
    assert page.locator('#large-reference circle.ref-point').count() == 3  # its labelled ones
    assert page.locator('#large-target text.label').first.text_content() == 'left ear 0.40'
    page.keyboard.press('ArrowRight')  # next in the order shown: 0.45 -> 0.55
    assert large.get_attribute('data-index') == '3'
    page.keyboard.press('Escape')
    assert not large.is_visible()
    assert not errors


def test_points_sit_on_the_predicted_pixels(case, browser_page):
    items, sizes, tmp = case
    page, errors = open_gallery(browser_page, write_gallery(tmp / 'gallery.html', items, NAMES,
                                                            SKELETONS, min_score=0.5))
    for index, size in sizes.items():
        assert_points_on_pixels(page, f'.thumb[data-index="{index}"]', size)
        page.click(f'.thumb[data-index="{index}"]')
        assert_points_on_pixels(page, '#large-target', size)
        if index != 3:  # the dog has no reference
            ref = page.locator('#large-reference circle.ref-point').first
            image = page.locator('#large-reference img').bounding_box()
            expected = (image['x'] + 10.5 / 90 * image['width'],
                        image['y'] + 12.5 / 60 * image['height'])
            np.testing.assert_allclose(centre(ref.bounding_box()), expected, atol=1.5)
        page.click('#close')
    flagged = page.locator('.thumb[data-index="0"] circle.point[data-status="1"]')
    assert flagged.get_attribute('fill') == 'none'  # a hollow ring, not a disc
    if os.environ.get('CORRKIT_GALLERY_SCREENSHOT'):  # the docs' picture
        page.click('.thumb[data-index="0"]')
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth)")
        target = Path(os.environ['CORRKIT_GALLERY_SCREENSHOT'])
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    assert not errors


def test_folder_mode_and_hostile_names_in_the_browser(tmp_path, browser_page):
    target = picture(tmp_path / f'{HOSTILE}.png', (40, 30), 0)
    reference = picture(tmp_path / 'ref.png', (40, 30), 1)
    category = f'</script>{HOSTILE}'
    page_path = write_gallery(
        tmp_path / 'g.html',
        [item(target, f'{HOSTILE}.png', [[3, 4], [30, 20]], [0.2, 0.9], [1, 2], 0.5,
              category=category, reference=reference, ref_points=[[5, 5], [6, 6]])],
        {category: [HOSTILE, 'ok']}, {category: [(0, 1)]}, 0.5, thumbnails='folder')
    page, errors = browser_page
    dialogs = []
    page.on('dialog', lambda d: (dialogs.append(d.message), d.dismiss()))
    open_gallery(browser_page, page_path)
    page.click('.thumb[data-index="0"]')
    assert page.locator('#large-title').inner_text() == f'{HOSTILE}.png'
    assert page.locator('#large-target text.label').first.text_content() == f'{HOSTILE} 0.20'
    assert page.locator('img[src="x"]').count() == 0
    loaded = page.locator('img').evaluate_all(
        'is => is.map(i => i.complete && i.naturalWidth > 0)')
    assert loaded and all(loaded)  # the folder's files, found relative to the page
    assert not dialogs and not errors


def test_an_empty_gallery_in_the_browser(tmp_path, browser_page):
    page, errors = open_gallery(browser_page, write_gallery(tmp_path / 'g.html', [], {}, {}, 0.5))
    assert 'Nothing to show' in page.inner_text('body')
    assert not page.locator('#controls').is_visible() and not errors
