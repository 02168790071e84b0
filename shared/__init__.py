"""Mechanism shared by every CMS service: config, database session, event store, outbox,
messaging, consumers, errors and logging. No domain rule lives here."""

import warnings

# eventlet announces its maintenance mode on import; nameko 2 is built on it (DESIGN §4).
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
