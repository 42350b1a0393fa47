from pathlib import Path

import yaml
from fastapi import FastAPI

CONTRACT = Path(__file__).resolve().parents[2] / "specs/001-backend-api-data/contracts/openapi.yaml"


def test_the_committed_contract_is_the_apps_schema(app: FastAPI) -> None:
    # `make openapi` rewrites the file.
    assert yaml.safe_load(CONTRACT.read_text()) == app.openapi()
