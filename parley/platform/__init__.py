"""The real components Parley runs on, started by the project itself: a Kafka broker
from Apache's jars, an embedded PostgreSQL, or testcontainers where Docker runs."""
