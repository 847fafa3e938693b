"""The tuner lowers the direct-reuse threshold only where labelled near misses place it."""

from types import SimpleNamespace as NS

from cli.tune import reuse_options


def row(expect, *candidates):
    return ({"query": "q", "expect": expect},
            NS(candidates=[NS(name=name, similarity=sim) for name, sim in candidates]))


def test_far_wrong_matches_never_justify_reusing_more():
    rows = [row(None, ("a", 0.16)), row("a", ("a", 0.75), ("b", 0.2))]
    assert min(reuse_options(rows, current=0.88)) == 0.88


def test_a_near_miss_places_a_lower_threshold_just_above_it():
    rows = [row(None, ("a", 0.62)), row("a", ("a", 0.75), ("b", 0.3))]
    options = reuse_options(rows, current=0.88)
    assert 0.63 in options and 0.72 in options
    assert 0.62 not in options and 0.73 not in options and 0.6 not in options


def test_a_wrong_tool_counts_as_a_near_miss_but_the_right_one_does_not():
    rows = [row("a", ("a", 0.95), ("b", 0.7))]
    options = reuse_options(rows, current=0.9)
    assert 0.71 in options and 0.8 in options and 0.81 not in options
