"""A PostgreSQL server of the test's own (data folder, port, socket) that it may restart and crash.

PostgreSQL refuses to run as root: as root the server runs as a non-root system
user (`postgres` when there is one) that owns the temporary folder.
"""

import asyncio
import os
import pwd
import shutil
import tempfile
from pathlib import Path

from tests.environment import TEST_POSTGRES_BIN_DIR
from tests.helpers import free_port

# Only against hanging: a crash recovery on a busy machine can take a while.
PATIENCE = 60


def _server_user() -> str | None:
    """The user to run the server as when this process is root, else None (this user)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and no non-root user to run PostgreSQL as")


def _bin_dir() -> Path:
    """Where `initdb` and `pg_ctl` are; a missing one fails the test, saying what to install."""
    folder = TEST_POSTGRES_BIN_DIR
    if folder is None or not (folder / "pg_ctl").exists():
        where = folder or "/usr/lib/postgresql/<version>/bin"
        raise RuntimeError(
            f"no PostgreSQL server programs (initdb, pg_ctl) in {where}: install the "
            "server (apt-get install postgresql-15), or point TEST_POSTGRES_BIN_DIR at them"
        )
    return folder


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.bin_dir = _bin_dir()
        self.port = free_port()
        self.user = _server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="throwaway-postgres-"))
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self.data = self.folder / "data"
        self.log_file = self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.folder,
        )
        async with asyncio.timeout(PATIENCE):
            output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} exited {process.returncode}:\n{output.decode()}\n"
                f"server log:\n{self.log_tail()}"
            )

    def _pg_ctl_args(self) -> list[str]:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        return ["-D", str(self.data), "-l", str(self.log_file), "-o", options, "-w"]

    async def init(self) -> None:
        await self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"
        )

    async def start(self) -> None:
        """Start, after a crash with crash recovery; returns once it accepts connections."""
        await self._run("pg_ctl", "start", "-t", str(PATIENCE), *self._pg_ctl_args())

    async def restart_fast(self) -> None:
        """Disconnect every client, shut down cleanly, start again."""
        await self._run(
            "pg_ctl", "restart", "-m", "fast", "-t", str(PATIENCE), *self._pg_ctl_args()
        )

    async def crash(self) -> None:
        """Kill the server without a shutdown checkpoint: the next start recovers."""
        await self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data), "-w")

    async def close(self) -> None:
        """Stop the server if it runs, and remove its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                await self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data), "-w")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "".join(self.log_file.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return "(no server log)"
