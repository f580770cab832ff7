"""Exit 0 when a PostgreSQL server answers at the given URL (used by `make test-postgres`)."""

import sys

try:
    import psycopg
except ImportError:
    sys.exit(1)

try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    print(f"pg_ready: {exc}".strip(), file=sys.stderr)
    sys.exit(1)
