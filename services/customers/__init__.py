"""The customers service: owns the `customers` schema and publishes to `customers.events`."""
