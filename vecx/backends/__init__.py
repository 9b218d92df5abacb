"""Built-in backends, one small class each. Importing this package imports no framework.

`BaseBackend` is the shared base a plugin may subclass: it implements the protocol's math
ops once (with the semantics every backend shares) on top of a few hooks (``_map``,
``_reduce``, ``_identity``, ``_astype``, ``_isfinite``); see ``vecx/backends/_base.py``.
"""

from vecx.backends._base import BaseBackend

__all__ = ["BaseBackend"]
