"""The API's operations, one module per area. Importing this package registers them all."""

from gateway.routes import admin, auth, me, users  # noqa: F401
