"""The API's operations, one module per area. Importing this package registers them all."""

from gateway.routes import (  # noqa: F401
    admin,
    analytics,
    auth,
    bulk,
    customer_imports,
    customers,
    event_feed,
    me,
    order_imports,
    orders,
    payment_webhooks,
    payments,
    products,
    users,
    webhooks,
)
