"""The rate-limit table cannot grow without bound (issue: it was never pruned)."""
from parley.sliding_window import SlidingWindow


def test_keys_whose_hits_are_older_than_the_window_are_pruned():
    window = SlidingWindow(per_window=3, window_seconds=60)
    for i in range(10_000):
        assert window.allow(f"ip:{i}", now=0.0 + i * 0.001)
    assert len(window.hits) == 10_000
    assert window.allow("ip:new", now=100.0)
    assert list(window.hits) == ["ip:new"]


def test_a_window_counts_per_key_and_forgets_after_the_window():
    window = SlidingWindow(per_window=2, window_seconds=60)
    assert window.allow("a", now=0) and window.allow("a", now=1)
    assert not window.allow("a", now=2)
    assert window.allow("b", now=2)
    assert window.allow("a", now=61)


def test_a_flood_of_new_keys_is_refused_rather_than_stored():
    window = SlidingWindow(per_window=5, window_seconds=60, max_keys=100)
    assert all(window.allow(f"k{i}", now=1.0) for i in range(100))
    assert not window.allow("k-extra", now=1.0)
    assert len(window.hits) == 100
    assert window.allow("k0", now=1.0)  # known keys still counted
