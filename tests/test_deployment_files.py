"""docker-compose.yml cannot run on a machine without a Docker engine, so check its shape."""

from pathlib import Path

import yaml

from shared.config import SERVICES

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_every_service_after_provisioning_on_healthy_backends():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["healthcheck"]["test"]
    assert services["rabbitmq"]["healthcheck"]["test"]
    assert services["provision"]["command"] == ["cms", "provision"]
    assert services["provision"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    for name in (*SERVICES, "gateway"):
        assert services[name]["command"] == ["cms", "serve", name]
        assert services[name]["depends_on"] == {
            "provision": {"condition": "service_completed_successfully"}
        }
        env = services[name]["environment"]
        assert env["CMS_DATABASE_URL"].startswith("postgresql+psycopg2://")
        assert "@postgres:5432/" in env["CMS_DATABASE_URL"]
        assert "@rabbitmq:5672/" in env["CMS_AMQP_URI"]
    assert services["gateway"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["gateway"]["environment"]["CMS_GATEWAY_HOST"] == "0.0.0.0"


def test_dockerfile_builds_the_ui_and_installs_with_the_constraints():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm run build" in dockerfile
    assert "pip install -c constraints.txt" in dockerfile
    assert 'CMD ["cms", "serve", "gateway"]' in dockerfile
