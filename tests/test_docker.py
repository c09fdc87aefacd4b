"""The Docker image, built from the repository's Dockerfile and run.

The build-and-run tests need a Docker daemon (``docker info``) and a Python base image: the
local ``zerohttp-local/python:bookworm`` (``bash ../shared/tools/docker-base.sh`` makes it
on machines without Docker Hub), or the image named by ``ZEROHTTP_TEST_PYTHON_IMAGE``;
without them they are skipped with the reason. The image is built once per session (a
session fixture; Docker's layer cache makes later sessions quick) under a tag derived from
this checkout's path, so worktrees do not overwrite each other's; every container has a
unique name and host port and is removed afterwards, whatever happens.

The static checks of the Dockerfile, ``.dockerignore`` and ``examples/docker/compose.yaml``
always run.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import free_port

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "examples" / "site"
COMPOSE = REPO / "examples" / "docker" / "compose.yaml"
LOCAL_BASE = "zerohttp-local/python:bookworm"
TAG = "zerohttp-test:" + hashlib.sha1(str(REPO).encode()).hexdigest()[:12]
# The image's (or Compose's) own check command, run every 300 ms instead of every 5 s, so a
# test waits a moment for the first check; test_dockerfile checks the image's own interval.
FAST_HEALTH = ["--health-interval", "300ms"]


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return result


def image_exists(name: str) -> bool:
    return docker("image", "inspect", name, check=False).returncode == 0


def docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker not installed"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 20 s"
    if info.returncode != 0:
        return f"no Docker daemon (docker info: {info.stderr.strip()[-200:]})"
    return None


@pytest.fixture(scope="session")
def image() -> str:
    """The image built from the Dockerfile, once per session."""
    reason = docker_unavailable()
    if reason is not None:
        pytest.skip(reason)
    base = os.environ.get("ZEROHTTP_TEST_PYTHON_IMAGE")
    if base is None:
        if not image_exists(LOCAL_BASE):
            pytest.skip(
                f"no base image {LOCAL_BASE} (bash ../shared/tools/docker-base.sh builds it; "
                "or name one in ZEROHTTP_TEST_PYTHON_IMAGE)"
            )
        base = LOCAL_BASE
    docker(
        *("build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}"),
        *("-t", TAG, str(REPO)),
        timeout=900,
    )
    return TAG


@dataclass
class Fetched:
    status: int
    headers: Message
    body: bytes


@dataclass
class Container:
    name: str
    host_port: int

    def inspect(self, template: str) -> str:
        return docker("inspect", "-f", template, self.name).stdout.strip()

    def logs(self) -> str:
        result = docker("logs", self.name)
        return result.stdout + result.stderr

    def wait_logs(self, text: str, timeout: float = 10) -> str:
        """The logs once they contain ``text`` (the access log is flushed about once a
        second); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while text not in (logs := self.logs()):
            assert time.monotonic() < deadline, f"no {text!r} in the logs: {logs}"
            time.sleep(0.1)
        return logs

    def exec(self, *command: str) -> str:
        return docker("exec", self.name, *command).stdout.strip()

    def get(self, path: str, context: ssl.SSLContext | None = None, wait: float = 0) -> Fetched:
        """GET path; retried for up to ``wait`` s while the container is starting."""
        deadline = time.monotonic() + wait
        while True:
            conn: http.client.HTTPConnection
            if context is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.host_port, timeout=10)
            else:
                conn = http.client.HTTPSConnection(
                    "localhost", self.host_port, timeout=10, context=context
                )
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                return Fetched(response.status, response.headers, response.read())
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline or self.inspect("{{.State.Running}}") != "true":
                    raise
                time.sleep(0.05)
            finally:
                conn.close()

    def wait_healthy(self, timeout: float = 40) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.inspect("{{.State.Health.Status}}")
            if status in ("healthy", "unhealthy"):
                return status
            time.sleep(0.1)
        return status

    def wait_health_log(self, status: str, text: str, timeout: float = 40) -> str:
        """The health log once the status is ``status`` and a check has reported ``text``
        (an early check may have run before the server listened); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.inspect("{{json .State.Health}}")
            if f'"Status":"{status}"' in health and text in health:
                return health
            assert time.monotonic() < deadline, f"not {status} with {text!r}: {health}"
            time.sleep(0.1)

    def stop(self) -> tuple[float, int]:
        """``docker stop`` (SIGTERM, SIGKILL after Docker's 10 s): (seconds, exit code)."""
        started = time.monotonic()
        docker("stop", self.name, timeout=30)
        return time.monotonic() - started, int(self.inspect("{{.State.ExitCode}}"))


@pytest.fixture
def run(image: str) -> Iterator[Callable[..., Container]]:
    """run(docker options, container_port, zerohttp arguments) -> a started Container."""
    started: list[str] = []

    def start(options: list[str], container_port: int, args: tuple[str, ...] = ()) -> Container:
        name = f"zerohttp-test-{uuid.uuid4().hex[:12]}"
        started.append(name)
        host_port = free_port()
        docker(
            *("run", "-d", "--name", name, "-p", f"127.0.0.1:{host_port}:{container_port}"),
            *options,
            image,
            *args,
        )
        return Container(name, host_port)

    yield start
    for name in started:
        docker("rm", "-f", name, check=False)


def readable_site(root: Path) -> Path:
    """A folder uid 10001 in the container can read."""
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>mounted</title>\n")
    (root / "sub").mkdir()
    (root / "sub" / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


# --- the image, built and run ---------------------------------------------------------


def test_serves_a_mounted_folder_on_the_port_from_the_environment(
    run: Callable[..., Container], tmp_path: Path
) -> None:
    site = readable_site(tmp_path / "site")
    container = run(["-e", "ZEROHTTP_PORT=18980", "-v", f"{site}:/srv:ro", *FAST_HEALTH], 18980)
    response = container.get("/sub/blob.bin", wait=20)
    assert response.status == 200
    assert response.body == (site / "sub" / "blob.bin").read_bytes()
    assert container.logs().startswith("zerohttp ")
    assert "serving /srv on http://0.0.0.0:18980/" in container.logs()

    assert container.exec("id", "-u") != "0", "runs as root"
    assert "zerohttp" in container.exec("cat", "/proc/1/cmdline"), "zerohttp is not PID 1"
    assert docker("exec", container.name, "which", "curl", check=False).returncode != 0

    assert container.wait_healthy() == "healthy"
    health = container.inspect("{{json .State.Health.Log}}")
    assert "zerohttp: check http://127.0.0.1:18980/healthz: 200 OK" in health

    seconds, exit_code = container.stop()
    assert exit_code == 0, container.logs()
    assert seconds < 10, f"docker stop took {seconds:.1f} s: SIGTERM was not honoured"
    assert "Traceback" not in container.logs()


def test_defaults_and_arguments(run: Callable[..., Container]) -> None:
    """No settings: the built-in /srv on port 8000; arguments are zerohttp flags and
    variables work alongside them."""
    container = run(
        ["-e", "ZEROHTTP_ACCESS_LOG=json"], 8000, ("--cache-control", "public, max-age=60")
    )
    response = container.get("/", wait=20)
    assert response.status == 200
    assert response.body == (SITE / "index.html").read_bytes()
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert "serving /srv on http://0.0.0.0:8000/" in container.logs()
    seconds, exit_code = container.stop()
    assert (exit_code, seconds < 10) == (0, True)
    assert '"path": "/"' in container.logs() or '"path":"/"' in container.logs(), "no json log"


def empty_folder(path: Path) -> Path:
    path.mkdir()
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_healthy_when_the_root_has_no_index(
    run: Callable[..., Container], tmp_path: Path, scheme: str
) -> None:
    """A download area, a bucket, an empty volume: / is a 404, and the container is healthy
    all the same, by the image's own health check (https when a certificate is set). The
    health path answers ok and never shows in the access log."""
    empty = empty_folder(tmp_path / "empty")
    options = ["-v", f"{empty}:/srv:ro", "-e", "ZEROHTTP_ACCESS_LOG=combined"]
    options += [*FAST_HEALTH, "--health-retries", "1"]
    context = None
    if scheme == "https":
        certs = self_signed(tmp_path / "certs")
        options += ["-v", f"{certs}:/certs:ro", "-e", "ZEROHTTP_SSL_CERTFILE=/certs/cert.pem"]
        options += ["-e", "ZEROHTTP_SSL_KEYFILE=/certs/key.pem"]
        context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    container = run(options, 8000)
    assert container.get("/", context=context, wait=20).status == 404
    health = container.get("/healthz", context=context)
    assert (health.status, health.body.strip()) == (200, b"ok")
    assert container.wait_healthy() == "healthy", container.inspect("{{json .State.Health}}")
    checks = container.inspect("{{json .State.Health.Log}}")
    assert f"zerohttp: check {scheme}://127.0.0.1:8000/healthz: 200 OK" in checks
    # logged in order: once a request made after the checks is in the log, so would they be
    container.get("/after-the-checks", context=context)
    logs = container.wait_logs('"GET /after-the-checks HTTP/1.1" 404')
    assert '"GET / HTTP/1.1" 404' in logs  # the access log is on
    assert "/healthz" not in logs, "health checks in the access log"


def test_with_the_health_path_off_the_check_fetches_the_root(
    run: Callable[..., Container], tmp_path: Path
) -> None:
    """ZEROHTTP_HEALTH_PATH emptied: the check reports what / answers (404 here), not merely
    that a port is open."""
    empty = empty_folder(tmp_path / "empty")
    options = ["-v", f"{empty}:/srv:ro", "-e", "ZEROHTTP_HEALTH_PATH=", *FAST_HEALTH]
    # no start period (the image's 10 s), so one failed check makes the container unhealthy
    options += ["--health-start-period", "1ms", "--health-retries", "1"]
    container = run(options, 8000)
    assert container.get("/healthz", wait=20).status == 404
    container.wait_health_log("unhealthy", "check http://127.0.0.1:8000/: 404 Not Found")


def test_image_is_small(image: str) -> None:
    base = os.environ.get("ZEROHTTP_TEST_PYTHON_IMAGE", LOCAL_BASE)
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    base_size = int(docker("image", "inspect", "-f", "{{.Size}}", base).stdout)
    added = (size - base_size) / 1e6
    assert added < 40, f"the image adds {added:.0f} MB to its base"


def compose_service(name: str) -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"][name]
    return service


def docker_run_options(service: dict[str, Any], mounts: dict[str, Path]) -> list[str]:
    """A Compose service's settings as ``docker run`` options (the Compose plugin may be
    missing); volumes by container path from ``mounts``."""
    options: list[str] = []
    for key, value in service.get("environment", {}).items():
        options += ["-e", f"{key}={value}"]
    for volume in service["volumes"]:
        _, target, mode = volume.rsplit(":", 2)
        options += ["-v", f"{mounts[target]}:{target}:{mode}"]
    if service.get("read_only"):
        options.append("--read-only")
    for capability in service.get("cap_drop", []):
        options += ["--cap-drop", capability]
    for option in service.get("security_opt", []):
        options += ["--security-opt", option]
    check = service["healthcheck"]
    assert check["test"][0] == "CMD-SHELL"
    options += ["--health-cmd", check["test"][1].replace("$$", "$")]
    for key in ("interval", "timeout", "start_period", "retries"):
        options += [f"--health-{key.replace('_', '-')}", str(check[key])]
    return options


def self_signed(directory: Path) -> Path:
    directory.mkdir()
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")),
        ],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr[-200:]}")
    directory.chmod(0o755)
    for name in ("key.pem", "cert.pem"):
        (directory / name).chmod(0o644)  # as examples/docker/README.md says
    return directory


@pytest.mark.parametrize("service_name", ["web", "web-tls"])
def test_compose_services(run: Callable[..., Container], tmp_path: Path, service_name: str) -> None:
    service = compose_service(service_name)
    mounts = {"/srv": SITE}
    context = None
    if service_name == "web-tls":
        certs = self_signed(tmp_path / "certs")
        mounts["/certs"] = certs
        context = ssl.create_default_context(cafile=str(certs / "cert.pem"))
    container_port = int(service["ports"][0].rsplit(":", 1)[1])
    # Compose's own check, its interval shortened (the last --health-interval counts)
    container = run([*docker_run_options(service, mounts), *FAST_HEALTH], container_port)
    response = container.get("/docs/guide.txt", context=context, wait=20)
    assert response.status == 200
    assert response.body == (SITE / "docs" / "guide.txt").read_bytes()
    assert container.wait_healthy() == "healthy", container.inspect("{{json .State.Health}}")
    seconds, exit_code = container.stop()
    assert (exit_code, seconds < 10) == (0, True), container.logs()
    assert '"GET /docs/guide.txt HTTP/1.1" 200' in container.logs()  # combined access log


# --- static checks (no Docker needed) -------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def test_dockerfile() -> None:
    stage = dict(final_stage())  # the last of each instruction in the image that runs
    assert re.fullmatch(r"10001(:10001)?", stage["USER"]), "non-root, numeric (runAsNonRoot)"
    env = stage["ENV"]
    for setting in ("ZEROHTTP_HOST=0.0.0.0", "ZEROHTTP_PORT=8000", "ZEROHTTP_ROOT=/srv"):
        assert setting in env
    assert stage["ENTRYPOINT"] == '["zerohttp"]', "exec form: zerohttp is PID 1"
    assert stage["CMD"] == "[]", "no flags in CMD: they would override the ZEROHTTP_* variables"
    assert "ZEROHTTP_HEALTH_PATH=/healthz" in env, "health independent of the content"
    health = stage["HEALTHCHECK"]
    assert "--interval=5s" in health and "--start-period=" in health
    assert not health.split("CMD", 1)[1].strip().startswith("["), "shell form expands the port"
    assert stage["EXPOSE"] == "8000"


def image_environment() -> dict[str, str]:
    """The final stage's ENV settings (those without a variable in their value)."""
    settings = dict(setting.split("=", 1) for setting in dict(final_stage())["ENV"].split())
    return {name: value for name, value in settings.items() if "$" not in value}


@pytest.mark.parametrize(
    "changes, url",
    [
        ({}, "http://127.0.0.1:8000/healthz"),
        ({"ZEROHTTP_PORT": "8080"}, "http://127.0.0.1:8080/healthz"),
        ({"ZEROHTTP_HEALTH_PATH": "/live"}, "http://127.0.0.1:8000/live"),
        ({"ZEROHTTP_HEALTH_PATH": ""}, "http://127.0.0.1:8000/"),  # health path off: /
        ({"ZEROHTTP_SSL_CERTFILE": "/certs/cert.pem"}, "https://127.0.0.1:8000/healthz"),
    ],
    ids=["defaults", "port", "health-path", "health-path-off", "tls"],
)
def test_the_health_check_follows_the_variables(changes: dict[str, str], url: str) -> None:
    """The HEALTHCHECK command run by a shell, as Docker runs it, with ``zerohttp`` a shell
    function that prints what it was asked to fetch."""
    command = dict(final_stage())["HEALTHCHECK"].split(" CMD ", 1)[1]
    script = 'zerohttp() { echo "$@"; }; ' + command
    environ = {"PATH": os.environ["PATH"], **image_environment(), **changes}
    result = subprocess.run(
        ["sh", "-c", script], env=environ, capture_output=True, text=True, timeout=10
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"--check {url}")


def test_dockerignore() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for name in (".venv", ".git", "tests"):
        assert name in ignored


def test_compose_file() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("web", "web-tls"):
        service = services[name]
        assert service["image"] == "zerohttp"
        assert any(v.endswith(":/srv:ro") for v in service["volumes"]), "mounted read-only"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL" and "zerohttp --check" in test[1]
        assert "$${ZEROHTTP_PORT}" in test[1], "$$: expanded in the container, not by Compose"
        assert "$${ZEROHTTP_PORT}$${ZEROHTTP_HEALTH_PATH:-/}" in test[1], "the image's health path"
    tls = services["web-tls"]
    assert tls["profiles"] == ["tls"]
    assert tls["environment"]["ZEROHTTP_SSL_CERTFILE"].startswith("/certs/")
    assert tls["environment"]["ZEROHTTP_SSL_KEYFILE"].startswith("/certs/")
    assert "./certs:/certs:ro" in tls["volumes"]
    assert "https://" in tls["healthcheck"]["test"][1]
