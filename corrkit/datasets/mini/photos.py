"""Real photos that ship inside installed packages, and their split."""
from __future__ import annotations

import importlib.util
from pathlib import Path

#: Photo name → (package, path inside the package). The name is the category.
PHOTOS = {
    'astronaut': ('skimage', 'data/astronaut.png'),
    'coffee': ('skimage', 'data/coffee.png'),
    'rocket': ('skimage', 'data/rocket.jpg'),
    'hubble': ('skimage', 'data/hubble_deep_field.jpg'),
    'ihc': ('skimage', 'data/ihc.png'),
    'retina': ('skimage', 'data/retina.jpg'),
    'camera': ('skimage', 'data/camera.png'),
    'coins': ('skimage', 'data/coins.png'),
    'chelsea': ('skimage', 'data/chelsea.png'),
    'grace_hopper': ('matplotlib', 'mpl-data/sample_data/grace_hopper.jpg'),
    'motorcycle': ('skimage', 'data/motorcycle_left.png'),
}

#: Disjoint photos per split (SPair-71k's split names).
SPLIT_PHOTOS = {
    'trn': ('astronaut', 'coffee', 'rocket', 'hubble', 'ihc', 'retina'),
    'val': ('camera', 'coins'),
    'test': ('chelsea', 'grace_hopper', 'motorcycle'),
}

#: Textures used as backgrounds and occluders (never a category).
TEXTURES = {
    'brick': ('skimage', 'data/brick.png'),
    'grass': ('skimage', 'data/grass.png'),
    'gravel': ('skimage', 'data/gravel.png'),
}


def package_file(package: str, relative: str) -> Path:
    """The path of a data file inside an installed package, without importing it.

    Raises:
        FileNotFoundError: If the package is not installed or lacks the file;
            the message says which package to install.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the mini dataset uses photos shipped with the '{package}' "
                                f"package, which is not installed; pip install "
                                f"{'scikit-image' if package == 'skimage' else package}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' is missing from the installed '{package}' package")
    return path
