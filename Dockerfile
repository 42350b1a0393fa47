# The production image: `make serve`'s command, run by an unprivileged user.
# It serves; it does not create the schema. Point DATABASE_URL at a prepared
# database (see docs/deploying-on-neon.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

RUN pip install --no-cache-dir uv \
    && useradd --system --no-create-home --uid 10001 todo

WORKDIR /app/backend

# Dependencies first, so that a code change does not reinstall them.
COPY backend/pyproject.toml backend/uv.lock backend/.python-version ./
RUN uv sync --locked --no-dev --no-install-project
COPY backend/src ./src
RUN uv sync --locked --no-dev

USER todo
ENV PATH="/app/backend/.venv/bin:$PATH" \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=2
EXPOSE 8000

# `exec` makes uvicorn PID 1, so that `docker stop`'s SIGTERM reaches it.
CMD ["sh", "-c", "exec uvicorn todo.main:create_app --factory --host \"$HOST\" --port \"$PORT\" --workers \"$WORKERS\" --no-access-log"]
