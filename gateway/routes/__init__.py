"""The API's operations, one module per area. Importing this package registers them all."""

from gateway.routes import (  # noqa: F401
    admin,
    auth,
    customer_imports,
    customers,
    me,
    payment_webhooks,
    payments,
    users,
)
