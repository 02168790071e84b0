"""The orders service: owns the `orders` schema and publishes to `orders.events`."""
