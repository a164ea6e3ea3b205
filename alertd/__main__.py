"""`python -m alertd`: the `alertd` command."""

import sys

from .cli import main

sys.exit(main())
