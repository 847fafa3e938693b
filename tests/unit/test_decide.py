"""The reuse rule of nodes/decide.py on hand-made rankings and evidence (pure, no graph)."""

from __future__ import annotations

import pytest

from nodes.decide import choose
from tools_store.models import Candidate, EvidenceHit, SearchResult

RULE = {"reuse": 0.9, "verify": 0.4, "evidence": 0.6, "judge_candidates": 3,
        "word_checks": True}


def cand(name: str, similarity: float, status: str = "verified", conflict: str = "",
         version: int = 1) -> Candidate:
    return Candidate(name=name, version=version, status=status, description="",
                     similarity=similarity, score=similarity, conflict=conflict)


def hit(tool: str, serves: bool, source: str = "judge", same: bool = False,
        similarity: float = 0.7, version: int = 1, id: int = 1) -> EvidenceHit:
    return EvidenceHit(id=id, request="an earlier request", tool=tool, version=version,
                       serves=serves, source=source,
                       strength="weak" if source == "execution" else "strong",
                       similarity=1.0 if same else similarity, same_request=same)


def decide(candidates, evidence=(), **rule):
    result = SearchResult(query="q", candidates=list(candidates), evidence=list(evidence))
    return choose(result, {**RULE, **rule})


def test_very_high_similarity_with_nothing_against_it_is_reused():
    choice = decide([cand("a", 0.95), cand("b", 0.5)])
    assert (choice.decision, choice.chosen.name) == ("reuse", "a")


@pytest.mark.parametrize("similarity,decision", [(0.89, "verify"), (0.4, "verify"),
                                                 (0.39, "synthesize")])
def test_below_the_reuse_threshold_is_judged_or_synthesized(similarity, decision):
    assert decide([cand("a", similarity)]).decision == decision


def test_the_word_checks_only_send_to_the_band_and_can_be_turned_off():
    choice = decide([cand("a", 0.95, conflict="the tool goes the other way")])
    assert choice.decision == "verify" and choice.reason.startswith("the tool goes")
    assert decide([cand("a", 0.95, conflict="x")], word_checks=False).decision == "reuse"


def test_strong_evidence_against_the_tool_nearby_blocks_direct_reuse():
    choice = decide([cand("a", 0.95)], [hit("a", serves=False, similarity=0.7)])
    assert choice.decision == "verify" and "does not serve a nearby request" in choice.reason
    # Another tool confirmed on a nearby request is contrary evidence too.
    choice = decide([cand("a", 0.95), cand("b", 0.3)], [hit("b", serves=True)])
    assert choice.decision == "verify" and [c.name for c in choice.band] == ["a", "b"]


def test_weak_evidence_never_allows_a_direct_reuse():
    choice = decide([cand("a", 0.5)], [hit("a", serves=True, source="execution", same=True)])
    assert choice.decision == "verify"
    # ... and does not block one either.
    choice = decide([cand("a", 0.95)], [hit("b", serves=True, source="execution")])
    assert choice.decision == "reuse"


@pytest.mark.parametrize("source", ["judge", "user"])
def test_the_same_request_confirmed_is_reused_at_once_even_at_low_similarity(source):
    choice = decide([cand("b", 0.8), cand("a", 0.45)], [hit("a", True, source, same=True)])
    assert (choice.decision, choice.chosen.name) == ("reuse", "a")
    assert f"{source} confirmed a" in choice.reason


def test_the_same_near_miss_refused_before_is_refused_without_a_judge():
    choice = decide([cand("a", 0.8)], [hit("a", serves=False, same=True)])
    assert choice.decision == "synthesize" and choice.refused == ["a"]
    assert "refused on evidence: a" in choice.reason
    # Another plausible tool still goes to the judge; the refused one is not shown.
    choice = decide([cand("a", 0.8), cand("b", 0.6)], [hit("a", serves=False, same=True)])
    assert choice.decision == "verify" and [c.name for c in choice.band] == ["b"]


def test_a_refusal_of_an_older_version_sends_the_new_version_to_the_judge():
    choice = decide([cand("a", 0.95, version=2)], [hit("a", False, same=True, version=1)])
    assert choice.decision == "verify" and choice.refused == []


def test_the_newest_verdict_on_the_same_request_wins():
    newer_no = [hit("a", True, same=True, id=1), hit("a", False, "user", same=True, id=2)]
    assert decide([cand("a", 0.5)], newer_no).decision == "synthesize"
    newer_yes = [hit("a", False, same=True, id=1), hit("a", True, same=True, id=2)]
    assert decide([cand("a", 0.5)], newer_yes).decision == "reuse"


def test_two_tools_confirmed_on_the_same_request_go_to_the_judge():
    choice = decide([cand("a", 0.95), cand("b", 0.5)],
                    [hit("a", True, same=True, id=1), hit("b", True, same=True, id=2)])
    assert choice.decision == "verify" and {c.name for c in choice.band} == {"a", "b"}


def test_an_experimental_tool_is_never_reused_without_a_judge():
    assert decide([cand("a", 0.99, status="experimental")]).decision == "verify"
    choice = decide([cand("a", 0.5, status="experimental")], [hit("a", True, same=True)])
    assert choice.decision == "verify"


def test_the_band_shows_the_judge_several_candidates_and_tools_confirmed_nearby():
    candidates = [cand("a", 0.7), cand("b", 0.6), cand("c", 0.5), cand("d", 0.45),
                  cand("e", 0.2)]
    choice = decide(candidates, [hit("e", serves=True, similarity=0.65)])
    assert [c.name for c in choice.band] == ["a", "e", "b"]
    assert [c.name for c in decide(candidates, judge_candidates=1).band] == ["a"]


def test_nothing_at_all_synthesizes():
    assert decide([]).decision == "synthesize"
