from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from todo.deps import DatabaseDep
from todo.http.problems import problem_docs

router = APIRouter(tags=["health"])


# Always sent: required in the schema, as their defaults would not say.
_ALWAYS_SENT = ConfigDict(json_schema_serialization_defaults_required=True)


class Health(BaseModel):
    model_config = _ALWAYS_SENT

    status: str = "ok"


class Readiness(BaseModel):
    model_config = _ALWAYS_SENT

    status: str = "ok"
    database: str = "ok"


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    # Never touches the database: a database outage must not get the process restarted.
    return Health()


@router.get(
    "/health/ready",
    response_model=Readiness,
    summary="Readiness: the database answers a trivial query in time",
    responses=problem_docs(503),
)
async def ready(database: DatabaseDep) -> Readiness:
    await database.ping()
    return Readiness()
