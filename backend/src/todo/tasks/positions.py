"""Manual order: each task's position, a string whose plain (code point) order is the user's.

Positions use the digits 0-9, A-Z, a-z (ASCII, so byte, code point and
"C"-collation order agree) and never end in "0", so that there is always a
string strictly between two of them.

- A write that puts a task first (a create, a move after nothing) gives it
  `first_position(change)`: "0", 10**15 minus the user's change number (15
  decimal digits for any number below 9 * 10**14), "1". Each change number is
  larger than every earlier one, so the new position is below every position
  the user's tasks had until then, with no need to read them: a create stays
  one statement.
- A move between two tasks gives it `between(before, after)`, a string strictly
  between (rocicorp's fractional indexing, without its integer part).
- When a position grows past MAX_LENGTH, the user's tasks are given
  `spread(change, i)` in their order: `first_position(change)` followed by i in
  a fixed width, all still below every later first position.
"""

from sqlalchemy import BigInteger, String, cast, literal
from sqlalchemy.sql.elements import ColumnElement

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE = len(DIGITS)
_COUNTDOWN_FROM = 10**15
# A position longer than this after a move sets off a rebalance of the user's tasks.
MAX_LENGTH = 48


def first_position(change: int) -> str:
    return f"0{_COUNTDOWN_FROM - change}1"


def first_position_sql(change: ColumnElement[int]) -> ColumnElement[str]:
    """`first_position` as SQL, for a write that takes its change number in the statement."""
    countdown = cast(literal(_COUNTDOWN_FROM, BigInteger) - change, String)
    return literal("0") + countdown + literal("1")


def spread(change: int, index: int, count: int) -> str:
    """The `index`-th of `count` evenly ordered positions below every earlier one."""
    width = 1
    while _BASE**width <= count:
        width += 1
    digits = []
    # Shifted by one so that no position ends in "0".
    value = index + 1
    for _ in range(width):
        value, digit = divmod(value, _BASE)
        digits.append(DIGITS[digit])
    suffix = "".join(reversed(digits))
    if suffix.endswith("0"):
        suffix += "1"
    return first_position(change) + suffix


def between(before: str | None, after: str | None) -> str:
    """A position strictly between `before` and `after` (None: no bound on that side)."""
    if before is not None and after is not None and not before < after:
        raise ValueError(f"{before!r} is not below {after!r}")
    return _midpoint(before or "", after)


def _midpoint(low: str, high: str | None) -> str:
    if high is not None:
        # The common prefix (the low side padded with zeros) stays as it is.
        shared = 0
        while shared < len(high) and (low[shared] if shared < len(low) else "0") == high[shared]:
            shared += 1
        if shared:
            return high[:shared] + _midpoint(low[shared:], high[shared:])
    low_digit = DIGITS.index(low[0]) if low else 0
    high_digit = DIGITS.index(high[0]) if high else _BASE
    if high_digit - low_digit > 1:
        return DIGITS[(low_digit + high_digit) // 2]
    if high is not None and len(high) > 1:
        return high[:1]
    return DIGITS[low_digit] + _midpoint(low[1:], None)
