"""Each service's README says what the service is, as its code says it: the routes it
serves (a table written from the code), the consumer groups and topics it reads, the
topics it writes (schemas/asyncapi.yaml names each topic's owner) and the variables
docs/configuration.md assigns to it. A README that drifts from the code fails here."""
import re

import pytest

from parley.config import REPO_ROOT, VARIABLES
from parley.schemas import load_topics

from tests import service_readmes
from tests.service_readmes import SERVICES

TOPICS = load_topics(REPO_ROOT / "schemas" / "asyncapi.yaml")
# How docs/configuration.md names each service before the colon of a variable's meaning.
NAMED_AS = {"gateway": ("gateway",), "conversation": ("conversation",),
            "operator-registry": ("operator-registry", "registry"), "crm-bridge": ("crm-bridge",),
            "scheduler": ("scheduler",)}


def readme_text(folder: str) -> str:
    return re.sub(r"\s+", " ", service_readmes.readme(folder).read_text())


@pytest.mark.parametrize("folder", SERVICES)
def test_the_route_table_is_the_code_s(folder):
    routes = service_readmes.routes_of(service_readmes.spec_of(folder))
    assert routes, "a service with no routes of its own: the table would be empty"
    assert service_readmes.written(folder) == service_readmes.table(routes), (
        f"services/{folder}/README.md's route table differs from the routes the code registers: "
        "run `.venv/bin/python -m tests.service_readmes` and describe the new routes in the prose")


@pytest.mark.parametrize("folder", SERVICES)
def test_consumers_and_topics_read_and_written_are_named(folder):
    spec, text = service_readmes.spec_of(folder), readme_text(folder)
    for consumer in spec.consumers:
        assert f"`{consumer.name}`" in text, f"consumer group {consumer.name} is not in services/{folder}/README.md"
        for topic in consumer.topics:
            assert f"`{topic}`" in text, f"{folder} consumes {topic}; its README does not say so"
    written = [t.name for t in TOPICS if folder in re.split(r"[ ,]+", t.owner)]
    for topic in written:
        assert f"`{topic}`" in text, f"{folder} writes {topic} (asyncapi.yaml); its README does not say so"


@pytest.mark.parametrize("folder", SERVICES)
def test_the_service_s_variables_are_named(folder):
    text = readme_text(folder)
    mine = [name for name, (_, meaning) in VARIABLES.items() if ":" in meaning
            and any(n in meaning.split(":")[0].lower() for n in NAMED_AS[folder])]
    assert [name for name in mine if name not in text] == []
