"""The payments service: owns the `payments` schema and publishes to `payments.events`."""
