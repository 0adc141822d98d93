from pathlib import Path

from parley.service import ServiceSpec, main

SPEC = ServiceSpec(
    name="scheduler",
    schema="scheduler",
    default_port=8084,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=True,
)

if __name__ == "__main__":
    main(SPEC)
