"""The fault catalogue: one small class per fault, registered by the name used in profiles.

Families: ``http`` (provider errors and semantic route faults), ``stream`` (faults at event
granularity), ``capacity`` (rate limiters and concurrency caps with real state), ``network``
(resets, black holes, lanes that stop listening) and ``tools`` (what is wrong inside a tool
call). See :mod:`harness.faults.base`.
"""

# each family registers its faults as it is imported; the package holds the whole catalogue, so
# the base module never imports its own families (no import circle)
from . import cache, capacity, http, network, stream, tools  # noqa: F401
from .base import FAULTS, Fault, FaultAttrError, fault_names, make_fault, register

__all__ = ["FAULTS", "Fault", "FaultAttrError", "fault_names", "make_fault", "register"]
