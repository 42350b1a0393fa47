from fastapi import APIRouter
from pydantic import BaseModel

from todo.deps import DatabaseDep
from todo.http.problems import problem_docs

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
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
