"""Policy values: dotted keys, deep overlays, the checks that refuse a bad change."""

from __future__ import annotations

import pytest

from tools_store.embeddings import LOCAL_ID
from tools_store.evidence import request_template
from tools_store.policies import (
    DEFAULT_POLICY,
    PolicyError,
    change_for,
    check,
    overlay,
    thresholds,
    value_at,
)


def test_dotted_keys_become_nested_changes_with_json_values():
    assert change_for("thresholds.openai:embed-v1.5.reuse", "0.9") == {
        "thresholds": {"openai:embed-v1.5": {"reuse": 0.9}}}
    assert change_for("word_checks", "false") == {"word_checks": False}
    assert value_at(DEFAULT_POLICY, f"thresholds.{LOCAL_ID}.verify") == 0.3


def test_a_value_nested_past_the_json_parser_is_refused_as_a_setting():
    with pytest.raises(PolicyError, match="nested too deeply"):
        change_for("replay_limit", "[" * 100000 + "]" * 100000)


def test_a_change_keeps_the_values_beside_it():
    policy = overlay(DEFAULT_POLICY, change_for(f"thresholds.{LOCAL_ID}.reuse", "0.95"))
    assert thresholds(policy, LOCAL_ID) == {"reuse": 0.95, "verify": 0.3, "evidence": 0.6}
    assert thresholds(policy, "openai:other") == DEFAULT_POLICY["thresholds"]["default"]


@pytest.mark.parametrize("key,value,message", [
    ("no_such_key", "1", "unknown policy key"), ("judge_candidates", "0", "from 1 to 10"),
    ("word_checks", "yes", "true or false"), ("weights.similarity", "2", "from 0.0 to 1.0"),
    (f"thresholds.{LOCAL_ID}.verify", "0.95", "verify must not exceed reuse"),
    (f"thresholds.{LOCAL_ID}.radius", "0.5", "unknown policy key"),
    # The settings that self-repair, workflows and memory read: a bad value here broke
    # every later turn with an error that did not name the policy.
    ("replay_limit", "abc", "replay_limit must be a whole number from 0 to 100"),
    ("rollback_window", "2.5", "rollback_window must be a whole number"),
    ("workflow_thresholds", '"x"', "workflow_thresholds must be an object"),
    (f"workflow_thresholds.{LOCAL_ID}", "NaN", "must be a number from 0.0 to 1.01"),
    ("calibration", '"x"', "calibration must be an object"),
    (f"calibration.{LOCAL_ID}", "1", "must be an object"),
    ("memory.nokey", "1", "unknown policy key memory.nokey"),
    ("promotion.min_success_rate", "Infinity", "from 0.0 to 1.0"),
    ("experimental_limits.memory_mb", "0", "from 32 to 65536"),
    ("experimental_limits.timeout", "-1", "from 0.5 to 600.0"),
])
def test_bad_changes_are_refused(key, value, message):
    with pytest.raises(PolicyError, match=message):
        check(overlay(DEFAULT_POLICY, change_for(key, value)))


def test_the_same_request_up_to_its_values():
    same = ["convert 5 km to miles", "Convert 12.5 km to miles!"]
    assert len({request_template(r) for r in same}) == 1
    for other in ("convert 5 miles to km", "convert 5 km to feet", "convert 5km to miles"):
        assert request_template(other) != request_template(same[0])
    assert request_template("count the vowels in 'banana'") == request_template(
        'count the vowels in "encyclopedia"')
    assert request_template("base64 of 12") != request_template("base32 of 12")
    assert request_template("it's 98.6 F") == request_template("it's 50 F")
