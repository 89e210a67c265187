"""The plugin guide's package outside the repository, as a new user runs it: the example of
`docs/examples/my-refiners` copied to a temporary folder and the guide's own commands run
there by bash (section 7 of docs/guides/plugins.md), with the real MobileNetV2 weights
(`make weights`).

The default test runs them on a smaller mini dataset and stops training after one
iteration; the slow one runs every command exactly as written."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corrkit.datasets.mini import make_mini_dataset

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / 'docs' / 'guides' / 'plugins.md'
EXAMPLE = REPO / 'docs' / 'examples' / 'my-refiners'
SECTION = '## 7. A plugin package outside the repository'


def guide_commands() -> list[str]:
    """Section 7's bash block: one command per entry, continuation lines joined."""
    text = GUIDE.read_text()
    section = text[text.index(SECTION):]
    block = re.search(r'```bash\n(.*?)```', section, flags=re.S).group(1)
    return [line for line in block.replace('\\\n', ' ').splitlines() if line.strip()]


def run_guide(folder: Path, commands: list[str]) -> str:
    """Run ``commands`` with bash in ``folder`` (stopping at the first failure), corrkit's
    clone as ``CORRKIT`` and this interpreter as ``python``; return the output."""
    commands = [re.sub(r'^export CORRKIT=\S+', f'export CORRKIT={REPO}', line)
                for line in commands]
    env = dict(os.environ, PATH=f'{Path(sys.executable).parent}{os.pathsep}'
                                f'{os.environ.get("PATH", "")}')
    env.pop('PYTHONPATH', None)  # the example is found as a user's would be, not through ours
    done = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', '\n'.join(commands)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=1500)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return done.stdout


def copy_example(tmp_path: Path) -> Path:
    folder = tmp_path / 'my-refiners'
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns('__pycache__'))
    return folder


def check_results(folder: Path, out: str) -> None:
    assert re.search(r'\b2 passed\b', out), out  # the package's own pytest run
    assert re.search(r'\|\s*refiner\s*\|\s*MutualMatchRefiner\s*\|\s*mutual_refiner\.', out), out
    best = list((folder / 'work_dirs' / 'mutual').glob('best_PCK@0.1_epoch_*.pth'))
    assert len(best) == 1
    for report in ('work_dirs/mutual/test/pck_bbox.json', 'work_dirs/zeroshot/pck_bbox.json'):
        assert (folder / report).is_file()
    rows = {m.group(1): [float(v) for v in m.group(2).split()]
            for m in re.finditer(r'^(zero-shot|mutual) +([\d. ]+?) +\d+$', out, re.M)}
    assert set(rows) == {'zero-shot', 'mutual'}, out
    assert all(len(values) == 3 and all(0 <= v <= 100 for v in values)
               for values in rows.values())


def test_the_guide_names_the_example_files_that_exist():
    text = GUIDE.read_text()
    shown = re.findall(r'--8<-- "my-refiners/([^"]+)"', text)
    assert {'mutual_refiner/refiner.py', 'configs/mutual_mobilenetv2_mini.py',
            'tests/test_refiner.py', 'pyproject.toml'} <= set(shown)
    files = {p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob('*')
             if p.is_file() and '__pycache__' not in p.parts}
    layout = text[text.index(SECTION):].split('```text')[1].split('```')[0]
    for name in files:  # the layout the guide draws lists every file of the example
        assert Path(name).name in layout, name


def test_the_guides_commands_run_on_a_copy_of_the_example(tmp_path):
    """Every command of section 7 but the mini dataset's (a smaller one is made here, as the
    command would in a minute) and with training cut to one iteration."""
    pytest.importorskip('skimage')
    folder = copy_example(tmp_path)
    make_mini_dataset(folder / 'data' / 'mini-spair', image_size=96,
                      views={'trn': 1, 'val': 1, 'test': 1})
    commands = [line for line in guide_commands() if 'make_mini_dataset.py' not in line]
    train = [i for i, line in enumerate(commands) if 'tools/train.py' in line]
    assert len(train) == 1 and len(commands) == len(guide_commands()) - 1
    commands[train[0]] += ' --cfg-options train_cfg.max_epochs=1 train_dataloader.dataset.indices=8'
    check_results(folder, run_guide(folder, commands))


@pytest.mark.slow
def test_the_guides_commands_run_exactly_as_written(tmp_path):
    """All of section 7 as written: the full mini dataset and the full training run."""
    pytest.importorskip('skimage')
    folder = copy_example(tmp_path)
    out = run_guide(folder, guide_commands())
    check_results(folder, out)
