"""PostgreSQL store: the asyncpg pool, numbered `.sql` migrations, and named queries loaded from `.sql` files."""

from unify.store._migrations import MIGRATIONS, Migration, applied_migrations, migrate
from unify.store._pool import CACHEABLE_STATEMENT_BYTES, DATABASE_UNREACHABLE, connect, open_pool
from unify.store._queries import Queries, load_queries

__all__ = [
    "CACHEABLE_STATEMENT_BYTES",
    "DATABASE_UNREACHABLE",
    "MIGRATIONS",
    "Migration",
    "Queries",
    "applied_migrations",
    "connect",
    "load_queries",
    "migrate",
    "open_pool",
]
