"""`python -m parley.admin migrate` (compose's one-shot, the k8s Job): every service's
schema migrated by the one runner from each service's own ServiceSpec, once."""
import dataclasses
import uuid

import pytest

from parley import admin, migrate_services

SERVICE_SCHEMAS = {"gateway", "conversation", "operator_registry", "crm_bridge", "scheduler"}


def test_the_specs_are_the_services_own():
    specs = migrate_services.service_specs()
    assert {s.schema for s in specs} == SERVICE_SCHEMAS
    for spec in specs:
        assert spec.migrations and sorted(spec.migrations.glob("*.sql")), spec.name


async def test_migrate_applies_every_service_schema_once(platform):
    prefix = f"t_{uuid.uuid4().hex[:8]}_"
    specs = [dataclasses.replace(s, schema=prefix + s.schema) for s in migrate_services.service_specs()]
    first = await migrate_services.migrate_all(platform.database_url, specs)
    for spec in specs:
        service_files = {f"service/{p.name}" for p in spec.migrations.glob("*.sql")}
        assert service_files <= set(first[spec.schema]), spec.name
        assert any(name.startswith("backbone/") for name in first[spec.schema]), spec.name
    again = await migrate_services.migrate_all(platform.database_url, specs)
    assert again == {spec.schema: [] for spec in specs}


def test_migrate_without_a_database_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as stop:
        admin.main(["migrate"])
    assert stop.value.code == 2
    assert "set DATABASE_URL or pass --database-url" in capsys.readouterr().err
