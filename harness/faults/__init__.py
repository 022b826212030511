"""The fault catalogue: one small class per fault, registered by the name used in profiles.

Families: ``http`` (provider errors and semantic route faults), ``stream`` (faults at event
granularity), ``capacity`` (rate limiters and concurrency caps with real state), ``network``
(resets, black holes, lanes that stop listening) and ``tools`` (what is wrong inside a tool
call). See :mod:`harness.faults.base`.
"""

from .base import FAULTS, Fault, FaultAttrError, fault_names, make_fault, register

__all__ = ["FAULTS", "Fault", "FaultAttrError", "fault_names", "make_fault", "register"]
