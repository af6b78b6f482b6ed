"""Handing freed memory back to the system between the phases of a large job."""

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


def release_freed_heap() -> None:
    """Return the C heap's free pages to the system (glibc's `malloc_trim`; elsewhere nothing).

    A report's read decodes one large row of bytes on the C heap, which keeps the pages when they
    are freed; Polars computes in memory of its own allocator, which cannot reuse them. Trimmed
    between the two, the process's peak is one of them, not their sum."""
    libc = _libc()
    trim = None if libc is None else getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
