"""The benchmark of `make bench`: seeding, the asyncpg reference app, and the runner."""
