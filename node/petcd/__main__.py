"""``python -m petcd``: the petcd server command (see :mod:`petcd.cli`)."""

import sys

from petcd.cli import main

sys.exit(main())
