"""``python -m avskit ...``: the same as the ``avskit`` script."""

import sys

from avskit.cli import main

sys.exit(main())
