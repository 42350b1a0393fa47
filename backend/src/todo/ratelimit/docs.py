"""How the rate limit shows in the OpenAPI document."""

from typing import Any

from todo.http.problems import problem_docs, retry_after_doc

RATE_LIMIT_HEADER_DOCS: dict[str, Any] = {
    "RateLimit-Policy": {
        "description": "When RATE_LIMIT is set: the per-user quota as a structured field "
        '(draft-ietf-httpapi-ratelimit-headers), e.g. `"default";q=60;w=3`: a burst of '
        "`q` requests, refilled over `w` seconds.",
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": "When RATE_LIMIT is set: what is left of the quota, e.g. "
        '`"default";r=12;t=3`: `r` requests now, full again in `t` seconds.',
        "schema": {"type": "string"},
    },
}

RETRY_AFTER_HEADER_DOC = retry_after_doc(
    "Seconds until the next request will be accepted.", required=True
)

RATE_LIMITED_DOCS = problem_docs(429)
RATE_LIMITED_DOCS[429]["description"] = (
    "Too Many Requests: this user is over the per-user rate limit (only when RATE_LIMIT is set)."
)
RATE_LIMITED_DOCS[429]["headers"] = {**RETRY_AFTER_HEADER_DOC, **RATE_LIMIT_HEADER_DOCS}
