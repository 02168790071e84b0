"""Rebuild the users read models from the event log: ``python -m services.users.rebuild``.

Safe while the service runs: the rebuild holds the event table's append lock, so commands wait
for it (a few seconds at most for a users log) and then see the rebuilt tables.
"""

from __future__ import annotations

import sys

from sqlalchemy.orm import Session

from services.users.projections import rebuild
from shared.config import settings
from shared.db import create_service_engine


def main() -> int:
    current = settings()
    engine = create_service_engine(current.service_url("users"), schema="users", pool_size=1)
    try:
        with Session(engine) as session:
            replayed = rebuild(session)
            session.commit()
    finally:
        engine.dispose()
    print(f"users read models rebuilt from {replayed} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
