"""The resilient HTTP client for the bot's backend services, behind the engine's port.

breaker    a circuit breaker per service, with exactly one probe when half-open
auth       the registry's tokens: one login or refresh serves every waiting request
service    one httpx client per service: pooling, in-flight cap, retries, breaker, logs
transport  the engine's Transport over the services, with health checks at start
outbox     submissions that could not be delivered, kept in SQLite until they are
"""
