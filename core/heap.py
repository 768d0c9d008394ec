"""Web processes set their loaded heap aside from the garbage collector.

What a web process has loaded once started (Django, the apps, their modules) lives as
long as the process. Left in the collector's sight, every full collection walks it all
again: under 4,000-row answers (the town's latest values) those collections took
100 ms, one request in twenty (bench/query.py: p95 123 ms before, 43–66 ms after).
``freeze_loaded_heap`` moves it to the permanent generation (``gc.freeze``); what the
process allocates afterwards is collected as usual. (The ingest and Celery workers gain
nothing measurable from it: bench/ingest.py, the same CPU a reading either way.)
"""

import gc


def freeze_loaded_heap() -> None:
    """Call once the process is loaded (csu/asgi.py)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
