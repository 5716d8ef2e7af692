"""'Did you mean ...?' for misspelt option names."""

from __future__ import annotations

from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to ``word`` if it is a plausible typo of it, else None.

    Plausible: at most one edit per three characters (at least one), where swapping two
    adjacent letters counts as one edit — "tpye" → "type", "max_record" → "max_records".
    """
    best: tuple[int, str] | None = None
    for candidate in candidates:
        distance = edit_distance(word.lower(), candidate.lower())
        if best is None or distance < best[0]:
            best = (distance, candidate)
    if best is None or best[0] > max(1, len(word) // 3):
        return None
    return best[1]


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            cost = 0 if char_a == char_b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]
