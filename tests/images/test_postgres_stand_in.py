"""The postgres stand-in under the Medusa chart's and the orchestrator chart's own pod specs:
initialises its volume, answers password logins over TCP from another host, serves no SSL (as the
official image), and keeps its data across a restart."""

from __future__ import annotations

import pytest

from tests.images.chart_pod import client, podman

pytestmark = pytest.mark.images

QUERY = "SELECT current_user, current_database(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def psql(image: str, url: str, password: str, sql: str):
    return client(image, "psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql, env={"PGPASSWORD": password})


@pytest.mark.parametrize("chart", ["medusa", "orchestrator"])
def test_password_logins_over_tcp_and_no_ssl(chart, chart_container):
    postgres = chart_container(chart, "postgres", "postgres")
    postgres.wait_until("startup" if "startupProbe" in postgres.spec else "readiness")
    assert postgres.probe_passes("readiness") and postgres.probe_passes("liveness")
    user, database, password = (
        postgres.env["POSTGRES_USER"],
        postgres.env["POSTGRES_DB"],
        postgres.env["POSTGRES_PASSWORD"],
    )
    url = f"postgresql://{user}@{postgres.ip}:5432/{database}"

    plain = psql(postgres.image, url + "?sslmode=disable", password, QUERY)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == f"{user}|{database}|f"

    encrypted = psql(postgres.image, url + "?sslmode=require", password, "SELECT 1")
    assert encrypted.returncode != 0
    assert "server does not support SSL" in encrypted.stderr, encrypted.stderr

    wrong = psql(postgres.image, url + "?sslmode=disable", password + "-wrong", "SELECT 1")
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr, wrong.stderr


def test_data_survives_a_restart(chart_container):
    postgres = chart_container("medusa", "postgres", "postgres")
    postgres.wait_until("startup")
    write = postgres.exec(
        "psql",
        "-U",
        postgres.env["POSTGRES_USER"],
        "-d",
        postgres.env["POSTGRES_DB"],
        "-c",
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)",
    )
    assert write.returncode == 0, write.stderr

    postgres.restart()
    postgres.wait_until("startup")
    read = postgres.exec(
        "psql", "-U", postgres.env["POSTGRES_USER"], "-d", postgres.env["POSTGRES_DB"], "-Atc", "SELECT x FROM kept"
    )
    assert read.stdout.strip() == "42", read.stderr
    assert "Skipping initialization" in postgres.logs()


def test_refuses_to_initialise_without_a_password(stand_in_images):
    """As the official image: an empty data directory and no POSTGRES_PASSWORD is an error that says what to set."""
    result = podman("run", "--rm", "--user", "70:70", stand_in_images["postgres"], check=False, timeout=60)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stdout + result.stderr
