"""Faults of the capacity family (see harness.faults.base)."""

from __future__ import annotations
