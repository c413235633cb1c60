"""Lambda's event filtering (FilterCriteria) for the local stream runner.

The deployed mapping drops records that match none of its filter patterns
before the function sees them; the runner applies the same patterns
(chalicelib.followups.STREAM_FILTER_PATTERNS), so a local invocation gets
the records a deployed one would. The rules, from Lambda's "Control which
events Lambda sends to your function":

- a record passes when it matches ANY pattern;
- a pattern matches when EVERY key in it matches (AND);
- an object in the pattern descends into the record's object of that key;
  a key the record lacks fails the match (unless `{"exists": false}`);
- a list holds alternatives (OR): a literal (string, number, boolean, null)
  matches an equal value, `{"prefix": "p"}` a string starting with p,
  `{"anything-but": [...]}` any value not listed, `{"exists": b}` presence;
- a rule that is not understood here raises ValueError instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_MISSING = object()


def matches_any(record: Mapping[str, Any], patterns: Iterable[Mapping[str, Any]]) -> bool:
    """True when the record passes the filter (no patterns: every record passes)."""
    patterns = list(patterns)
    return not patterns or any(_object(record, pattern) for pattern in patterns)


def _object(value: Any, pattern: Mapping[str, Any]) -> bool:
    if not isinstance(value, Mapping):
        return False
    for key, rule in pattern.items():
        field = value.get(key, _MISSING)
        if isinstance(rule, Mapping):
            if field is _MISSING or not _object(field, rule):
                return False
        elif isinstance(rule, Sequence) and not isinstance(rule, str):
            if not any(_alternative(field, alternative) for alternative in rule):
                return False
        else:
            raise ValueError(f"filter rule for {key!r} must be an object or a list: {rule!r}")
    return True


def _alternative(field: Any, alternative: Any) -> bool:
    if not isinstance(alternative, Mapping):
        return field is not _MISSING and _equal(field, alternative)
    if len(alternative) != 1:
        raise ValueError(f"one operator per filter rule: {alternative!r}")
    (operator, operand), = alternative.items()
    if operator == "exists":
        return (field is not _MISSING) == bool(operand)
    if field is _MISSING:
        return False
    if operator == "prefix":
        return isinstance(field, str) and field.startswith(str(operand))
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_equal(field, value) for value in excluded)
    raise ValueError(f"filter operator {operator!r} is not supported by the local runner")


def _equal(field: Any, literal: Any) -> bool:
    if isinstance(literal, bool) or isinstance(field, bool):
        return field is literal
    if isinstance(literal, int | float) and isinstance(field, int | float):
        return float(field) == float(literal)
    return bool(field == literal)
