"""`python -m alertd.cli`: the `alertd` command."""

import sys

from .main import main

sys.exit(main())
