"""Search keys: a task's text as searches compare it, the same on every database.

Neither database folds case the way Unicode does on its own (SQLite's lower()
knows ASCII only; PostgreSQL's lower() leaves "ß" as it is, while "STRASSE"
folds to "strasse"), so the service stores each searchable field once more,
folded (NFKC, then case folding), and a query folded the same way is a plain
substring match against it: `LIKE` with `%`, `_` and `\\` escaped.
"""

import unicodedata

ESCAPE = "\\"


def search_key(text: str) -> str:
    """NFKC_Casefold, near enough: "ÉCOLE" and "école", "STRASSE" and "Straße" meet."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def contains_pattern(query: str) -> str:
    """A LIKE pattern (escape character `\\`) matching keys that contain `query`'s key."""
    key = search_key(query)
    escaped = key.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"
