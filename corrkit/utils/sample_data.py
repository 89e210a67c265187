"""Real photos that ship inside installed packages, for demos and tests."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"the sample photos come with the package '{name}'; "
                                  f"install it (pip install -e '.[dev]')")
    return Path(spec.origin).parent


def sample_image(name: str) -> Path:
    """Path of a bundled photo.

    Args:
        name: ``'astronaut'``, ``'chelsea'``, ``'coffee'``, ``'rocket'``,
            ``'motorcycle_left'``, ``'motorcycle_right'`` (scikit-image) or
            ``'grace_hopper'`` (matplotlib).

    Returns:
        The file path.

    Raises:
        ModuleNotFoundError: If the package that ships the photo is missing.
        FileNotFoundError: If the package has no such photo.
    """
    if name == 'grace_hopper':
        path = _package_dir('matplotlib') / 'mpl-data' / 'sample_data' / 'grace_hopper.jpg'
    else:
        folder = _package_dir('skimage') / 'data'
        matches = sorted(folder.glob(f'{name}.*'))
        path = matches[0] if matches else folder / f'{name}.png'
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no bundled photo '{name}' at {path}")
    return path


def sample_pair() -> tuple[Path, Path]:
    """Two portraits of different people: the default pair of the demo."""
    return sample_image('astronaut'), sample_image('grace_hopper')


#: Hand-placed points on the astronaut portrait (pixels of the 512×512 photo):
#: eyes, nose, mouth, chin, hair, a flag star, the name tag, the mission patch
#: and both shoulders.
ASTRONAUT_KPS = [[205, 110], [242, 110], [224, 130], [224, 150], [222, 178], [225, 40],
                 [35, 65], [300, 355], [170, 380], [60, 300], [340, 300]]
