from pathlib import Path

from parley.service import ServiceSpec, main

SPEC = ServiceSpec(
    name="gateway",
    schema="gateway",
    default_port=8080,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=False,
)

if __name__ == "__main__":
    main(SPEC)
