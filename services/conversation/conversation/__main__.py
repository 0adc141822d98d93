from pathlib import Path

from parley.service import ServiceSpec, main

from conversation import api

SPEC = ServiceSpec(
    name="conversation",
    schema="conversation",
    default_port=8081,
    migrations=Path(__file__).parent / "migrations",
    routes=api.add_routes,
)

if __name__ == "__main__":
    main(SPEC)
