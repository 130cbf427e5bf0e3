"""The listener's process settings: the cycle collector's thresholds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from wsinspect.relay.server import GC_THRESHOLDS, tune_gc


@pytest.fixture
def saved_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("saved_thresholds")
def test_serving_raises_the_default_collector_thresholds() -> None:
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS


@pytest.mark.usefixtures("saved_thresholds")
def test_higher_collector_thresholds_set_by_the_embedder_are_kept() -> None:
    gc.set_threshold(100_000, 5, 50)
    tune_gc()
    assert gc.get_threshold() == (100_000, 5, 50)


@pytest.mark.usefixtures("saved_thresholds")
def test_a_disabled_collector_stays_disabled() -> None:
    gc.set_threshold(0)
    tune_gc()
    assert gc.get_threshold()[0] == 0
