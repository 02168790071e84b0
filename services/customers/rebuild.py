"""Rebuild the customers read models from the event log: ``python -m services.customers.rebuild``.

Safe while the service runs: the rebuild locks the read models against writers (readers go
on seeing the old rows until it commits) and then the event table, so commands wait for it and
then see the rebuilt tables.
"""

from __future__ import annotations

import sys

from sqlalchemy.orm import Session

from services.customers.projections import rebuild
from shared.config import settings
from shared.db import create_service_engine


def main() -> int:
    current = settings()
    engine = create_service_engine(
        current.service_url("customers"), schema="customers", pool_size=1
    )
    try:
        with Session(engine) as session:
            replayed = rebuild(session)
            session.commit()
    finally:
        engine.dispose()
    print(f"customers read models rebuilt from {replayed} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
