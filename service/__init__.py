"""The HTTP process API (``twin serve``): promotion and POS/inventory events in, governed
replenishment actions out; API keys, roles, idempotency, the outbox of webhooks."""
