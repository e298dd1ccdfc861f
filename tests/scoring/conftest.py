"""Fixtures for the scorer: the in-project model, loaded once per session."""

from __future__ import annotations

import pytest

from scoring.models import TEST_MODEL, ScoringModel, load_model


@pytest.fixture(scope="session")
def tiny_model() -> ScoringModel:
    """The committed in-project model (never retrained by tests), on CPU in fp32 so results
    do not depend on the CPU's bf16 support."""
    name, tag = TEST_MODEL
    return load_model(name, tag, device="cpu", precision="fp32")
