"""The component catalogue covers every registered name and points at configs that exist."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r'^\| (\w+) \| `(\w+)` \|.*\| (`configs/[^`]+`|every [a-z ]+) \|$')


def catalogue_rows():
    text = (ROOT / 'docs' / 'api' / 'components.md').read_text()
    section = text.split('## Catalogue', 1)[1].split('\n## ', 1)[0]
    return [ROW.match(line) for line in section.splitlines() if line.startswith('| ')
            and not line.startswith('| registry') and not line.startswith('|---')]


def test_catalogue_lists_every_registered_name_once():
    rows = catalogue_rows()
    assert all(rows), [r for r in rows if not r]
    listed = sorted((m.group(1), m.group(2)) for m in rows)
    snapshot = json.loads((ROOT / 'tests' / 'snapshots' / 'registered_names.json').read_text())
    registered = sorted((registry, name) for registry, names in snapshot.items()
                        for name in names)
    assert listed == registered


def test_catalogue_configs_exist_and_use_the_component():
    from corrkit.config import load_config
    for match in catalogue_rows():
        used_by = match.group(3)
        if used_by.startswith('`'):
            path = ROOT / used_by.strip('`')
            assert path.is_file(), used_by
            assert match.group(2) in load_config(path).pretty_text, (match.group(2), used_by)


def test_every_exception_class_is_defined_in_corrkit_errors():
    import corrkit.errors
    defined = {(path.relative_to(ROOT).as_posix(), m.group(1))
               for path in (ROOT / 'corrkit').rglob('*.py')
               for m in re.finditer(r'^class (\w+(?:Error|Exception))\(', path.read_text(), re.M)}
    assert {path for path, _ in defined} == {'corrkit/errors.py'}
    assert {name for _, name in defined} == set(corrkit.errors.__all__)


def test_troubleshooting_lists_every_error_class_and_tool_message():
    """Every exception class corrkit defines has an entry, and so do messages the tools print."""
    import corrkit.errors
    page = (ROOT / 'docs' / 'guides' / 'troubleshooting.md').read_text()
    classes = corrkit.errors.__all__
    assert len(classes) >= 8
    assert [name for name in sorted(classes) if f'`{name}`' not in page] == []
    for message in ('could not be read (line N)', 'did you mean', 'closest registered names',
                    'cannot be read with torch.load(weights_only=True)', 'does not fit',
                    'non-finite training loss', 'passing over unreadable checkpoint',
                    'is too large to open safely', 'lies outside the W x H source image',
                    'Configs are code', "meta['config']", 'could not download',
                    'refused member', 'cannot be evaluated: it has no'):
        assert message in page, message
