"""The mariadb stand-in under the WooCommerce chart's pod spec: healthcheck.sh probes pass once the
data directory is initialised, WordPress' user logs in over TCP from another host, root only from
inside the pod (MARIADB_ROOT_HOST=localhost), and the data survives a restart."""

from __future__ import annotations

import pytest

from tests.images.chart_pod import client, podman

pytestmark = pytest.mark.images


def test_serves_wordpress_and_keeps_root_local(chart_container):
    mariadb = chart_container("woocommerce", "mariadb", "mariadb")
    mariadb.wait_until("startup")
    assert mariadb.probe_passes("readiness") and mariadb.probe_passes("liveness")
    env = mariadb.env

    wordpress = client(
        mariadb.image,
        "mariadb",
        "-h",
        mariadb.ip,
        "-u",
        env["MARIADB_USER"],
        env["MARIADB_DATABASE"],
        "-Nse",
        "SELECT CURRENT_USER(), DATABASE()",
        env={"MYSQL_PWD": env["MARIADB_PASSWORD"]},
    )
    assert wordpress.returncode == 0, wordpress.stderr
    assert wordpress.stdout.split() == [f"{env['MARIADB_USER']}@%", env["MARIADB_DATABASE"]]

    remote_root = client(
        mariadb.image,
        "mariadb",
        "-h",
        mariadb.ip,
        "-u",
        "root",
        "-e",
        "SELECT 1",
        env={"MYSQL_PWD": env["MARIADB_ROOT_PASSWORD"]},
    )
    assert "Access denied" in remote_root.stderr, remote_root.stderr
    local_root = mariadb.exec("sh", "-c", 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb -u root -Nse "SELECT 1"')
    assert local_root.stdout.strip() == "1", local_root.stderr


def test_data_survives_a_restart(chart_container):
    mariadb = chart_container("woocommerce", "mariadb", "mariadb")
    mariadb.wait_until("startup")
    sql = 'MYSQL_PWD="$MARIADB_PASSWORD" mariadb -u "$MARIADB_USER" "$MARIADB_DATABASE" -Nse "$0"'
    assert mariadb.exec("sh", "-c", sql, "CREATE TABLE kept (x INT); INSERT INTO kept VALUES (42)").returncode == 0

    mariadb.restart()
    mariadb.wait_until("startup")
    assert mariadb.exec("sh", "-c", sql, "SELECT x FROM kept").stdout.strip() == "42"
    assert "init process done" not in mariadb.logs().rsplit("started.", 1)[-1]


def test_refuses_to_initialise_without_a_root_password_option(stand_in_images):
    result = podman("run", "--rm", "--user", "999:999", stand_in_images["mariadb"], check=False, timeout=60)
    assert result.returncode != 0
    assert "MARIADB_ROOT_PASSWORD" in result.stdout + result.stderr
