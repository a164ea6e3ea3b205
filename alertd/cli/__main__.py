"""`python -m alertd.cli`: the `alertd` command."""

import sys

from .entry import main

sys.exit(main())
