"""Write the app's OpenAPI document to the committed contract file."""

import sys
from pathlib import Path

import yaml

from todo.config import Settings
from todo.main import create_app

CONTRACT = Path(__file__).resolve().parents[2] / "specs/001-backend-api-data/contracts/openapi.yaml"


def render() -> str:
    # The committed contract is header mode's; JWT mode differs only in how
    # the caller is named (see README).
    app = create_app(Settings(database_url="sqlite:///:memory:", auth_mode="header"))
    return yaml.safe_dump(app.openapi(), sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    CONTRACT.write_text(render())
    sys.stdout.write(f"wrote {CONTRACT}\n")
