"""Test configuration: headless Qt, one torch thread, paths to the shared real data."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (../shared/data); tests that need it skip without it."""
    if not (SHARED_DATA / "ddti" / "image").is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA
