"""Lazily compiled numba kernels for the packet decoder's inner loops.

``@kernel`` marks a plain-Python function whose compiled version (numba ``njit``, cached on disk next
to the module, or in ``$NUMBA_CACHE_DIR``) is built on its first call, so importing alertlib never
pays for numba, and a process pays for compiling only once per machine (about a second per kernel;
loading a cached one takes milliseconds). The plain function stays reachable as ``.py``.
"""

from __future__ import annotations

import functools


def kernel(function):
    """Compile ``function`` with ``numba.njit(cache=True, nogil=True)`` on its first call."""
    compiled = None

    @functools.wraps(function)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            import numba

            try:
                compiled = numba.njit(cache=True, nogil=True)(function)
            except RuntimeError:  # no writable cache location (a read-only install): compile each run
                compiled = numba.njit(cache=False, nogil=True)(function)
        return compiled(*args)

    call.py = function
    return call
