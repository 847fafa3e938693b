"""`--learn`'s radius ceiling: the most direct reuse any evidence radius gives the unseen half."""

from cli.evaluate import radius_ceiling
from tools_store.models import Evidence

# Two-dimensional stand-ins for request embeddings: the angle is what matters.
VECTORS = {"served": [1.0, 0.0], "refused": [0.0, 1.0],
           "paraphrase": [0.9, 0.1], "near miss": [0.95, 0.05], "far paraphrase": [0.6, 0.4],
           "like the refused": [0.1, 0.9]}


def evidence(request, serves, source="judge"):
    return Evidence(request=request, tool="km_to_miles", version=1, serves=serves, source=source)


def ceiling(fed, test):
    return radius_ceiling(lambda text: VECTORS[text], fed, test)


def test_the_widest_radius_stops_before_the_first_wrong_reuse():
    fed = [evidence("served", True), evidence("refused", False)]
    test = [{"query": "paraphrase", "expect": "km_to_miles"},
            {"query": "near miss", "expect": None},  # nearer the served request than it
            {"query": "like the refused", "expect": None}]  # nearest is a refusal: no reuse
    # Any radius that reuses the paraphrase also reuses the nearer near miss: 1 of 3 wrong.
    assert ceiling(fed, test) == {"radius": None, "direct_reuse_share": 0.0,
                                  "false_direct_reuses": 0}
    test[1]["expect"] = "km_to_miles"  # now the near request is a true one
    found = ceiling(fed, test)
    assert found["direct_reuse_share"] == round(2 / 3, 4) and found["false_direct_reuses"] == 0
    assert 0.99 < found["radius"] < 0.995  # the paraphrase's cosine to the served request


def test_a_wrong_reuse_within_the_target_is_allowed_and_counted():
    fed = [evidence("served", True)]
    true = [{"query": "paraphrase", "expect": "km_to_miles"}] * 40
    test = true + [{"query": "far paraphrase", "expect": None}]  # 1 of 41 wrong: 0.024 <= 0.03
    found = ceiling(fed, test)
    assert found["direct_reuse_share"] == 1.0 and found["false_direct_reuses"] == 1


def test_weak_evidence_never_counts():
    fed = [evidence("served", True, source="execution")]
    found = ceiling(fed, [{"query": "paraphrase", "expect": "km_to_miles"}])
    assert found["direct_reuse_share"] == 0.0 and found["radius"] is None
