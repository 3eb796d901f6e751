"""HTTP plumbing every API shares: the error table and envelope, access logs, tokens, OpenAPI."""
