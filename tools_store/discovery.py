"""Signals for ranking candidates: re-ranking scores and near-miss conflicts.

Similarity alone cannot tell "convert miles to kilometers" from the tool that converts
kilometers to miles, or "shortest word" from "longest word": the embeddings of near misses
sit as close as true paraphrases. Two checks read the words themselves:

* direction: a tool named ``a_to_b`` contradicts a request that names b before a around a
  "to"/"into"/"in", or converts "from b";
* contrast: a tool whose text uses one term of a set of mutually exclusive alternatives
  (encode/decode, longest/shortest, mean/median/mode, ...) contradicts a request that asks
  for another term of the same set and not the tool's.

The graph never reuses a candidate with a conflict directly: it goes to the verify band,
where a model (when there is one) judges it.
"""

from __future__ import annotations

import math
import re

# Sets of mutually exclusive alternatives in the vocabulary of small utility tools.
CONTRASTS: list[set[str]] = [
    {"encode", "decode"}, {"encrypt", "decrypt"}, {"compress", "decompress"},
    {"serialize", "deserialize"}, {"zip", "unzip"}, {"escape", "unescape"},
    {"longest", "shortest"}, {"largest", "smallest"}, {"biggest", "smallest"},
    {"maximum", "minimum"}, {"max", "min"}, {"highest", "lowest"}, {"oldest", "newest"},
    {"first", "last"}, {"uppercase", "lowercase"}, {"ascending", "descending"},
    {"increase", "decrease"}, {"addition", "subtraction"},
    {"multiply", "divide"}, {"sum", "product"}, {"union", "intersection"},
    {"vowel", "consonant"}, {"simple", "compound"}, {"even", "odd"},
    {"mean", "median", "mode"}, {"variance", "deviation"}, {"merge", "split"},
    {"join", "split"}, {"circle", "rectangle", "square", "triangle", "ellipse"},
    {"sine", "cosine", "tangent"}, {"celsius", "fahrenheit", "kelvin"},
    {"gcd", "lcm"}, {"binary", "hexadecimal", "octal"}, {"until", "ago"},
    {"until", "since"}, {"email", "phone", "url", "hashtag", "ip"},
]
# Multi-word terms folded into one before comparing.
PHRASES = {
    "greatest common divisor": "gcd", "greatest common factor": "gcd",
    "highest common factor": "gcd", "least common multiple": "lcm",
    "lowest common multiple": "lcm", "standard deviation": "deviation",
    "phone number": "phone", "e mail": "email", "ip address": "ip",
}
NEGATIONS = {"without", "no", "not", "non", "never", "excluding"}
CONNECTIVES = {"to", "into", "in", "as"}
# Unit abbreviations for direction checks; single letters count only after a number.
ABBREVIATIONS = {
    "km": "kilometer", "mi": "mile", "kg": "kilogram", "lb": "pound", "lbs": "pound",
    "cm": "centimeter", "mm": "millimeter", "ft": "feet", "oz": "ounce", "f": "fahrenheit",
    "c": "celsius", "k": "kelvin", "m": "meter", "g": "gram", "l": "liter", "hex": "hex",
    "int": "integer", "num": "number",
}
# Hyphenated compounds stay whole: "url-encoded" names an input, not the operation asked.
_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def stem(word: str) -> str:
    """Return a crude stem so that plurals and tenses compare equal."""
    word = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def tokens(text: str) -> list[str]:
    """Split text into lowercase word tokens, folding known multi-word terms."""
    text = text.lower()
    for phrase, term in PHRASES.items():
        text = re.sub(rf"\b{phrase}s?\b", term, text)
    return _TOKEN.findall(text)


def _is_number(token: str) -> bool:
    return any(ch.isdigit() for ch in token)


def _positions(words: list[str], term: str) -> list[int]:
    """Where ``term`` (or its abbreviation) stands in ``words``."""
    target = stem(term)
    hits = []
    for i, word in enumerate(words):
        expanded = ABBREVIATIONS.get(word)
        if expanded and len(word) == 1 and not (i and _is_number(words[i - 1])):
            expanded = None
        if stem(word) == target or (expanded and stem(expanded) == target):
            hits.append(i)
    return hits


def direction_conflict(tool_name: str, request: str) -> str:
    """Explain how ``request`` reverses a ``source_to_target`` tool, or return ''."""
    if "_to_" not in tool_name:
        return ""
    source, target = tool_name.split("_to_", 1)
    words = tokens(request)
    src = [p for term in source.split("_") for p in _positions(words, term)]
    dst = [p for term in target.split("_") for p in _positions(words, term)]
    reversed_pair = (src and dst and min(dst) < min(src)
                     and any(w in CONNECTIVES for w in words[min(dst) + 1:min(src)]))
    from_target = any(i and words[i - 1] == "from" for i in dst) and not src
    if reversed_pair or from_target:
        return (f"the request converts {target.replace('_', ' ')} to "
                f"{source.replace('_', ' ')}; the tool goes the other way")
    # "... into <source>" with no target named: the request produces what the tool consumes.
    into_source = not dst and any(
        any(w in ("to", "into") for w in words[max(0, p - 4):p]) for p in src)
    if into_source:
        return (f"the request converts into {source.replace('_', ' ')}; the tool converts "
                f"from it")
    # "from X to <target>" where X is not the tool's source: same target, other input.
    if "from" in words and dst and not src:
        start = words.index("from")
        ends = [i for i in range(start + 1, len(words)) if words[i] in ("to", "into")]
        if ends and any(p > ends[0] for p in dst) and ends[0] > start + 1:
            named = " ".join(words[start + 1:ends[0]])
            return (f"the request converts from {named}; the tool converts from "
                    f"{source.replace('_', ' ')}")
    return ""


def _terms(words: list[str]) -> set[str]:
    """Stems of the words, leaving out those right after a negation."""
    kept = set()
    for i, word in enumerate(words):
        if any(w in NEGATIONS for w in words[max(0, i - 2):i]):
            continue
        kept.add(stem(word))
        if word in ABBREVIATIONS and len(word) > 1:
            kept.add(stem(ABBREVIATIONS[word]))
    return kept


def contrast_conflict(tool_text: str, request: str) -> str:
    """Explain which alternative the request asks for instead of the tool's, or return ''."""
    tool_terms = _terms(tokens(tool_text))
    request_terms = _terms(tokens(request))
    for group in CONTRASTS:
        stems = {stem(term): term for term in group}
        in_tool = tool_terms & stems.keys()
        in_request = request_terms & stems.keys()
        if in_tool and in_request and not in_tool & in_request:
            asked = ", ".join(stems[s] for s in sorted(in_request))
            offered = ", ".join(stems[s] for s in sorted(in_tool))
            return f"the request asks for {asked}; the tool does {offered}"
    return ""


# Only explicit asks for a verdict: a leading "is ..." is too often a way of asking for a value.
YES_NO_REQUEST = re.compile(r"\b(check|tell|see|know|determine|verify) (me )?(whether|if)\b",
                            re.IGNORECASE)
PREDICATE_TOOL = re.compile(r"\b(whether|check if|checks if|true if|is it)\b", re.IGNORECASE)


def answer_kind_conflict(tool_text: str, returns: str, request: str) -> str:
    """Explain how a yes/no question meets a tool that does not answer yes or no, or ''."""
    if not YES_NO_REQUEST.search(request):
        return ""
    if returns == "boolean" or PREDICATE_TOOL.search(tool_text):
        return ""
    return "the request asks a yes/no question; the tool does not answer one"


def conflict(tool_name: str, tool_text: str, request: str, returns: str = "") -> str:
    """Return why the request contradicts the tool, or ''."""
    return (direction_conflict(tool_name, request)
            or contrast_conflict(f"{tool_name.replace('_', ' ')} {tool_text}", request)
            or answer_kind_conflict(tool_text, returns, request))


def rank_score(similarity: float, success_rate: float | None, uses: int, status: str,
               weights: dict) -> float:
    """Combine similarity, historical success and usage with the policy's weights."""
    prior = 0.8 if status == "verified" else 0.3  # no history yet: trust the verification
    success = prior if success_rate is None else success_rate
    usage = min(1.0, math.log1p(uses) / math.log1p(50))
    return (weights["similarity"] * similarity + weights["success"] * success
            + weights["usage"] * usage)
