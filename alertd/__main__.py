"""`python -m alertd`: the `alertd` command."""

import sys

from .cli.main import main

sys.exit(main())
