"""Work started in a thread of its own, beside the caller's."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor


def beside(function, *args, **kwargs) -> Future:
    """``function(*args, **kwargs)`` started in a thread of its own, in a copy of the caller's context (so
    context variables, such as the writer's ``all_or_nothing``, reach it); ``.result()`` waits for it and
    raises what it raised. numpy, scipy, gzip and PIL let go of the GIL in their heavy parts, so on a
    machine with two cores or more both threads run at once."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(contextvars.copy_context().run, function, *args, **kwargs)
    pool.shutdown(wait=False)  # the thread ends with its one task
    return future
