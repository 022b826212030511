"""Faults of the stream family (see harness.faults.base)."""

from __future__ import annotations
