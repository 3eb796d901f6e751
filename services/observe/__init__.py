"""What an operator sees: Prometheus metrics, health endpoints and liveness."""
