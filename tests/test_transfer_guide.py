"""The transfer guide's worked example, as written: its reference file and its commands
(on a mini dataset with fewer views, in a temporary folder), with the default model and
the real MobileNetV2 weights (`make weights`)."""
import json
import re
import shlex
from pathlib import Path

import pytest

from corrkit.cli import main as corrkit_main
from corrkit.datasets.mini import make_mini_dataset
from corrkit.datasets.mini.coco import write_mini_coco

GUIDE = Path(__file__).resolve().parents[1] / 'docs' / 'guides' / 'transfer.md'


def blocks(kind: str) -> list[str]:
    return re.findall(rf'```{kind}\n(.*?)```', GUIDE.read_text(), flags=re.S)


def transfer_commands() -> list[list[str]]:
    """Every `corrkit transfer` command of the guide's bash blocks, continuation lines joined."""
    commands = []
    for block in blocks('bash'):
        text = block.replace('\\\n', ' ')
        for line in text.splitlines():
            line = line.split('#')[0].strip()
            if line.startswith('corrkit transfer') and 'REFS.json' not in line and \
                    'refs.json' not in line:
                commands.append(shlex.split(line)[1:])
    return commands


@pytest.fixture(scope='module')
def mini(tmp_path_factory):
    pytest.importorskip('skimage')
    root = make_mini_dataset(tmp_path_factory.mktemp('data') / 'mini-spair',
                             views={'trn': 1, 'val': 1, 'test': 7})
    write_mini_coco(root)
    return root


def run(args: list[str], root: Path, work: Path) -> int:
    args = [a.replace('data/mini-spair', str(root)).replace('work_dirs', str(work))
            for a in args] + ['--no-progress']
    return corrkit_main(args)


def test_the_guides_example_runs_as_written(mini, tmp_path, capsys):
    reference = json.loads(blocks('json')[0])
    (mini / 'chelsea_face.json').write_text(json.dumps(reference))
    example, evaluation = transfer_commands()
    assert run(example, mini, tmp_path) == 0
    out = capsys.readouterr().out
    # the photo and its 7 views; 1 reference + 8 targets encoded
    assert re.search(r'^8 targets: 8 transferred, 0 already done, 0 failed; \d+ points '
                     r'accepted, \d+ flagged \(score < 0.3\); 9 images encoded$', out, re.M)
    folder = tmp_path / 'transfer_chelsea'
    doc = json.loads((folder / 'annotations.json').read_text())
    assert doc['categories'][0]['keypoints'] == reference['categories'][0]['keypoints']
    # the reference photo itself is a target: its points come back where they were labelled
    own = next(a for a in doc['annotations']
               if doc['images'][a['image_id'] - 1]['file_name'] == 'chelsea_00.jpg')
    labelled = reference['annotations'][0]['keypoints']
    for k in range(5):
        assert abs(own['keypoints'][3 * k] - labelled[3 * k]) <= 8
        assert abs(own['keypoints'][3 * k + 1] - labelled[3 * k + 1]) <= 8
    assert (folder / 'gallery.html').is_file()

    assert run(evaluation, mini, tmp_path) == 0
    out = capsys.readouterr().out
    assert re.search(r'^all +\d+ ', out, re.M) and re.search(r'^accepted ', out, re.M)
    report = json.loads((tmp_path / 'transfer_eval' / 'eval.json').read_text())
    assert report['images'] == 2 and report['overall']['all']['n'] > 10  # views 6 and 7
