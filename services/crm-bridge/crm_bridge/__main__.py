from pathlib import Path

from parley.service import ServiceSpec, main

SPEC = ServiceSpec(
    name="crm-bridge",
    schema="crm_bridge",
    default_port=8083,
    migrations=Path(__file__).parent / "migrations",
    owns_streams=True,
)

if __name__ == "__main__":
    main(SPEC)
