"""scripts/preflight-test: `make test` without a service it needs stops at once, saying which."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.environment import needs_postgresql
from tests.helpers import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "preflight-test"
# Closed ports refuse at once; this only bounds a hang.
SECONDS = 5


def preflight(tmp_path: Path, **overrides: str) -> tuple[int, list[str], float]:
    """Exit status and output lines of the script, with `overrides` on this environment."""
    environment = {**os.environ, **overrides}
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SECONDS * 2,
        check=False,
    )
    return (
        finished.returncode,
        (finished.stdout + finished.stderr).splitlines(),
        (time.monotonic() - started),
    )


def fake_program(folder: Path, name: str, output: str) -> None:
    program = folder / name
    program.write_text(f"#!/bin/sh\necho {output}\n")
    program.chmod(0o755)


def test_it_passes_with_the_services_of_this_run(tmp_path: Path) -> None:
    assert preflight(tmp_path)[:2] == (0, [])


@pytest.mark.parametrize(
    ("variable", "url", "named"),
    [
        *(
            pytest.param(
                name,
                "postgresql://postgres@127.0.0.1:{port}/postgres",
                "PostgreSQL",
                marks=needs_postgresql,
            )
            for name in ("TEST_POSTGRES_URL", "TEST_POSTGRES_ADMIN_URL", "BENCH_POSTGRES_URL")
        ),
        ("TEST_REDIS_URL", "redis://127.0.0.1:{port}/0", "Redis"),
    ],
)
def test_a_server_that_does_not_answer_is_one_line(
    tmp_path: Path, variable: str, url: str, named: str
) -> None:
    port = free_port()

    status, lines, seconds = preflight(tmp_path, **{variable: url.format(port=port)})

    assert status == 2
    assert seconds < SECONDS
    assert len(lines) == 1
    assert f"{named} is not answering on 127.0.0.1:{port} ({variable})" in lines[0]
    assert lines[0].startswith("make test: ")


@needs_postgresql
def test_missing_postgresql_programs_are_one_line(tmp_path: Path) -> None:
    status, lines, _ = preflight(tmp_path, TEST_POSTGRES_BIN_DIR=str(tmp_path))

    assert status == 2
    assert lines == [
        f"make test: PostgreSQL's initdb and pg_ctl are not in {tmp_path} "
        "(TEST_POSTGRES_BIN_DIR); apt-get install postgresql-15"
    ]


def test_without_node_it_says_so(tmp_path: Path) -> None:
    status, lines, _ = preflight(tmp_path, PATH=str(tmp_path))

    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith("make test: Node.js is not installed")


def test_an_old_node_is_refused(tmp_path: Path) -> None:
    fake_program(tmp_path, "node", "v18.19.0")
    fake_program(tmp_path, "npm", "10.2.3")

    status, lines, _ = preflight(tmp_path, PATH=str(tmp_path))

    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith("make test: Node.js v18.19.0 is older than 20")


def test_without_npm_it_says_so(tmp_path: Path) -> None:
    fake_program(tmp_path, "node", "v20.11.0")

    status, lines, _ = preflight(tmp_path, PATH=str(tmp_path))

    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith("make test: npm is not installed")


def test_postgresql_is_not_required_when_the_run_leaves_it_out(tmp_path: Path) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"

    status, lines, _ = preflight(
        tmp_path,
        TEST_DATABASES="sqlite",
        TEST_POSTGRES_URL=closed,
        BENCH_POSTGRES_URL=closed,
        TEST_POSTGRES_BIN_DIR=str(tmp_path),
    )

    assert (status, lines) == (0, [])
