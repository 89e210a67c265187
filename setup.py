"""Build hook: the wheel carries the repository's configs, plugins and model index (one copy of
each file in the tree).

Everything else lives in setup.cfg. ``configs/`` stays at the top of the repository,
where the README and the tools use it; building a wheel copies it into
``corrkit/.mim/configs`` (OpenMMLab's layout), where
:func:`corrkit.hub.model_names.config_root` finds it once installed, so names,
``_base_`` inheritance and relative paths work without the repository. An editable
install reads the repository's ``configs/`` directly.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithConfigs(build_py):
    """``build_py`` plus copies of ``configs/`` and ``plugins/`` (without their tests) into
    ``corrkit/.mim``: a config's ``custom_imports`` finds ``plugins`` next to the configs
    folder (``corrkit.config.import_plugins`` looks in the folders above a config)."""

    def run(self):
        super().run()
        if self.editable_mode:  # the package is read from the tree, configs included
            return
        for folder in ('configs', 'plugins'):
            target = Path(self.build_lib) / 'corrkit' / '.mim' / folder
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(ROOT / folder, target, ignore=shutil.ignore_patterns(
                '__pycache__', '*.pyc', 'test_*.py'))
        # the model index lists the configs' families; it sits next to the configs folder
        shutil.copy2(ROOT / 'model-index.yml', Path(self.build_lib) / 'corrkit' / '.mim')


setup(cmdclass={'build_py': BuildWithConfigs})
