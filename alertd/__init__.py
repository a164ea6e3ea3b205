"""alertd: a plugin-based alerting daemon.

Plugin authors need `hookimpl` from here and the base classes from `alertd.base`.
"""

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
