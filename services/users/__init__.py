"""The users service: owns the `users` schema and publishes to `users.events`."""
