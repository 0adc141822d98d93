"""The real components Parley runs on in development and tests, started by the project
itself: a Kafka broker from Apache's jars, an embedded PostgreSQL, the compose emulator.
Not a package of the product: `pip install .` (the image) leaves it out, and it runs from
the repository root (`python -m devstack.run`), like bench/ and chaos/."""
