from pathlib import Path

from parley.service import ServiceSpec, main

SPEC = ServiceSpec(
    name="operator-registry",
    schema="operator_registry",
    default_port=8082,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=True,
)

if __name__ == "__main__":
    main(SPEC)
