"""The `alertd` command line: `main` (the console script) builds the parser from one module
per command (`COMMANDS` in alertd/cli/entry.py); `common` holds what they share.
"""


def main(argv=None) -> int:
    """The `alertd` command: parse `argv` (default: sys.argv), run the command, return its
    exit code."""
    from .entry import main as run

    return run(argv)
