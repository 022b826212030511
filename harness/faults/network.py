"""Faults of the network family (see harness.faults.base)."""

from __future__ import annotations
