"""The word-level checks and the ranking score of discovery (pure functions).

The decision rule itself is tested in tests/unit/test_decide.py.
"""

from __future__ import annotations

import pytest

from tools_store.discovery import conflict, rank_score


@pytest.mark.parametrize("tool,description,request_text", [
    ("kilometers_to_miles", "Convert a distance in kilometers to miles.",
     "convert 5 miles to kilometers"),
    ("fahrenheit_to_celsius", "Convert Fahrenheit to Celsius.", "convert 30 celsius to fahrenheit"),
    ("hex_to_rgb", "Convert a hex color code into red, green and blue.", "convert RGB to hex"),
    ("unix_to_iso", "Convert a Unix timestamp to ISO 8601.",
     "convert a date from DD/MM/YYYY to ISO"),
    ("base64_encode", "Encode text as base64.", "decode this base64 string back to text"),
    ("longest_word", "Find the longest word in a sentence.", "find the shortest word"),
    ("median", "Return the median of a list of numbers.", "what is the mode of this list"),
    ("simple_interest", "Compute simple interest.", "compound interest on 1000 at 5%"),
    ("primes_below", "List all prime numbers smaller than n.", "check whether 7 is prime"),
])
def test_near_misses_are_flagged(tool, description, request_text):
    assert conflict(tool, description, request_text)


@pytest.mark.parametrize("tool,description,request_text", [
    ("kilometers_to_miles", "Convert a distance in kilometers to miles.",
     "I ran 10 km, how many miles is that?"),
    ("fahrenheit_to_celsius", "Convert Fahrenheit to Celsius.", "it's 98.6 F, what in celsius"),
    ("csv_to_json", "Convert the rows of a CSV file into JSON records.",
     "turn inventory.csv into JSON"),
    ("simple_interest", "Compute simple interest.", "interest for 4 years without compounding"),
    ("is_leap_year", "Tell whether a year is a leap year.", "was 1900 a leap year?"),
    ("median", "Return the median of a list of numbers.", "what is the middle value of 3, 9, 1"),
])
def test_true_matches_are_not_flagged(tool, description, request_text):
    assert conflict(tool, description, request_text) == ""


def test_rank_score_uses_the_weights():
    weights = {"similarity": 0.7, "success": 0.2, "usage": 0.1}
    assert rank_score(1.0, 1.0, 50, "verified", weights) == pytest.approx(1.0)
    assert rank_score(0.5, 0.0, 0, "verified", weights) == pytest.approx(0.35)
    assert rank_score(0.5, None, 0, "verified", weights) > rank_score(0.5, None, 0,
                                                                      "experimental", weights)
