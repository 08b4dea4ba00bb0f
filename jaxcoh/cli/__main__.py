"""``python -m jaxcoh.cli``: the same as the ``jaxcoh`` command."""

import sys

from . import main

sys.exit(main())
