"""``python -m harness.cli``: the ``routechaos`` command."""

import sys

from . import main

sys.exit(main())
