"""The optional engine for drills past one process: lanes as replicated Ray actors, the
workload as agent actors, one coordinator for every fault decision, one merged journal.

``pip install routechaos[ray]``. Nothing here imports ray until an engine is started
(:mod:`harness.ray.engine`); :mod:`harness.ray.coordinator` and :mod:`harness.ray.hook` are
plain asyncio and work (and are tested) without it.
"""
