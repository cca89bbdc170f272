"""Security of the no-Docker stack, for real: only 127.0.0.1 listens, nginx's own errors are JSON
with the security headers, and MLflow's authentication, when turned on, refuses anonymous users."""

from __future__ import annotations

import base64

import psutil
import pytest
from mlflow import MlflowClient

from florisense_model.stack import services, settings, supervisor
from tests.support.http import assert_safe_json_error, request
from tests.support.servers import free_port

pytestmark = pytest.mark.integration


def listening_addresses(processes: list[psutil.Process]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket of these processes."""
    return {
        (connection.laddr.ip, connection.laddr.port)
        for process in processes
        for connection in process.net_connections("inet")
        if connection.status == psutil.CONN_LISTEN
    }


def stack_processes(config: settings.StackConfig) -> list[psutil.Process]:
    groups = {supervisor.running_pid(s) for s in services.all_services(config)} - {None}
    return [process for group in groups for process in supervisor.process_group(group)]


def test_every_stack_process_listens_on_127_0_0_1_only(serving_stack):
    config, _ = serving_stack
    addresses = listening_addresses(stack_processes(config))
    ports = {port for _, port in addresses}
    assert {config.web_port, config.mlflow_port, config.s3_port} <= ports
    assert {address for address, _ in addresses} <= {"127.0.0.1", "::1"}, addresses


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "message"),
    [
        ("GET", "/" + "a" * 20_000, {}, 414, "URI too long"),
        ("GET", "/", {"X-Padding": "a" * 20_000}, 431, "headers too large"),
        ("GET", "/no-such-page.js", {}, 404, "not found"),
        ("POST", "/app.js", {}, 405, "not allowed"),
        ("GET", "/predict", {}, 405, "use POST"),
    ],
    ids=["long-uri", "huge-header", "unknown-path", "post-to-a-file", "get-predict"],
)
def test_nginx_errors_are_short_json_with_security_headers(
    serving_stack, method, path, headers, status, message
):
    config, _ = serving_stack
    got, response_headers, payload = request(
        f"{config.web_url}{path}", method, b"x" if method == "POST" else None, headers
    )
    assert message in assert_safe_json_error(got, payload, status)
    assert response_headers["content-type"].startswith("application/json")
    assert response_headers["x-content-type-options"] == "nosniff"
    assert response_headers["server"] == "nginx"  # no version number


def test_mlflow_authentication_when_on_refuses_anonymous_requests(tmp_path, monkeypatch):
    password = "correct-horse-battery-9"
    monkeypatch.setenv("FLORISENSE_MLFLOW_AUTH", "true")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", password)
    config = settings.StackConfig(run_dir=tmp_path / "run", mlflow_port=free_port(), s3_port=1)
    server = services.tracking_server(config)
    try:
        supervisor.start(server)
        api = f"{config.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
        status, _, _ = request(api)
        assert status == 401
        status, _, _ = request(f"{config.tracking_uri}/")  # the UI
        assert status == 401
        wrong = base64.b64encode(b"admin:not-the-password").decode()
        assert request(api, headers={"Authorization": f"Basic {wrong}"})[0] == 401
        # A client with the credentials (MLflow's own environment variables) works.
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = MlflowClient(tracking_uri=config.tracking_uri)
        assert [e.name for e in client.search_experiments()] == ["Default"]
    finally:
        supervisor.stop(server)
    assert password not in (config.run_dir / "mlflow" / "basic_auth.ini").read_text()


def test_mlflow_authentication_refuses_to_start_without_a_strong_admin_password(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("FLORISENSE_MLFLOW_AUTH", "true")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "short")
    config = settings.StackConfig(run_dir=tmp_path / "run", mlflow_port=free_port())
    with pytest.raises(RuntimeError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        services.tracking_server(config)
