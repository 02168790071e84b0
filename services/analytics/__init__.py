"""The analytics service: owns the `analytics` schema and publishes to `analytics.events`."""
