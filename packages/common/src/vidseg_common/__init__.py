"""vidseg-common: the shared foundation of the vidseg monorepo.

Subpackages are imported lazily by their users; importing ``vidseg_common`` itself has no side effects.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
