"""Fixtures for the speech tests: an isolated cache for every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test writes its cache under its own tmp folder, never to ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("VQVAE_CACHE", str(cache))
    return cache
