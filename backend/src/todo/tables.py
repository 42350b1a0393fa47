"""Every table the service owns, imported so that the shared metadata knows them all.

Migrations and their tests import this module; a new model module is added here.
"""

from todo.db.metadata import metadata
from todo.idempotency import models as idempotency_models
from todo.tasks import models as tasks_models
from todo.users import models as users_models

__all__ = ["idempotency_models", "metadata", "tasks_models", "users_models"]
