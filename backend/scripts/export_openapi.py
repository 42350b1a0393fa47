"""Write the committed OpenAPI contract (both modes' callers) from the app."""

import sys
from pathlib import Path

import yaml

from todo.main import openapi_contract

CONTRACT = Path(__file__).resolve().parents[2] / "specs/001-backend-api-data/contracts/openapi.yaml"


if __name__ == "__main__":
    CONTRACT.write_text(yaml.safe_dump(openapi_contract(), sort_keys=False, allow_unicode=True))
    sys.stdout.write(f"wrote {CONTRACT}\n")
