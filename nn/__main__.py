"""``python -m nn``: see `nn.cli`."""

import sys

from .cli import main

sys.exit(main())
