from __future__ import annotations

import pytest

from .builder import JB


@pytest.fixture
def jb() -> JB:
    return JB()
