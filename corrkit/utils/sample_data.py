"""Real photos that ship inside installed packages, for demos and tests."""
from __future__ import annotations

from pathlib import Path

from .fileio import package_file


def sample_image(name: str) -> Path:
    """Path of a bundled photo.

    Args:
        name: ``'astronaut'``, ``'chelsea'``, ``'coffee'``, ``'rocket'``,
            ``'motorcycle_left'``, ``'motorcycle_right'`` (scikit-image) or
            ``'grace_hopper'`` (matplotlib).

    Returns:
        The file path.

    Raises:
        FileNotFoundError: If the package that ships the photo is missing (the
            message says what to install) or has no such photo.
    """
    if name == 'grace_hopper':
        return package_file('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg')
    folder = package_file('skimage', 'data')
    matches = sorted(folder.glob(f'{name}.*'))
    if not matches:
        raise FileNotFoundError(f"no bundled photo '{name}' in {folder} (package 'skimage')")
    return matches[0]


def sample_pair() -> tuple[Path, Path]:
    """Two portraits of different people: the default pair of the demo."""
    return sample_image('astronaut'), sample_image('grace_hopper')


#: Hand-placed points on the astronaut portrait (pixels of the 512×512 photo):
#: eyes, nose, mouth, chin, hair, a flag star, the name tag, the mission patch
#: and both shoulders.
ASTRONAUT_KPS = [[205, 110], [242, 110], [224, 130], [224, 150], [222, 178], [225, 40],
                 [35, 65], [300, 355], [170, 380], [60, 300], [340, 300]]
