"""``python -m spectrum_tune.cli``."""

import sys

from . import main

sys.exit(main())
