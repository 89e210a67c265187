"""``python -m corrkit.cli``: the ``corrkit`` command without its console script."""
import sys

from . import main

sys.exit(main())
