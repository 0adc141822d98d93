"""Parley's event backbone: the one copy every service imports.

envelope   - the event envelope and its wire format
schemas    - JSON Schema validation of events, topic list from AsyncAPI
db         - asyncpg pools and the migration runner
eventstore - append with expected version, load, read all, idempotent commands
kafka      - the one Kafka wrapper (producer, consumer, admin)
relay      - outbox relay: event store -> Kafka, in commit order
consumer   - consumer runner: at-least-once delivery, exactly-once effect
service    - aiohttp service skeleton: /healthz, /readyz, /metrics, lifecycle
logs       - JSON logs with correlation ids
config     - settings from environment variables
"""
