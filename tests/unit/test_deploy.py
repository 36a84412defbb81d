"""The files in deploy/: Kubernetes manifests valid offline against a pinned
Kubernetes schema, and the numbers in them consistent with crackershop's
own settings (workers, memory, grace periods)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from crackershop.config import Config, load

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
# the oldest Kubernetes the manifests are meant for (bundled by kubernetes-validate)
KUBERNETES_VERSION = "1.30.0"
MANIFESTS = sorted(K8S.glob("*.yaml"))


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in MANIFESTS:
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in documents() if d["kind"] == kind]
    return doc


def quantity(text: str) -> int:
    """A Kubernetes memory quantity in bytes (Mi, Gi, M, G, or plain)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", text).groups()  # type: ignore[union-attr]
    return int(number) * units.get(unit, 1)


def settings() -> Config:
    """The crackershop configuration the ConfigMap and Secret template give."""
    env = dict(find("ConfigMap")["data"])
    env.update(find("Secret")["stringData"])
    config, _ = load({}, env, {})
    return config


def test_every_kind_is_there() -> None:
    """deploy/k8s holds the Deployment, Service, HPA, ConfigMap, Secret and PDB."""
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Secret",
            "Service",
        ]
    )


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates(path: Path) -> None:
    """Each manifest passes strict schema validation, offline."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_broken_manifest() -> None:
    """The validator is not a no-op: an unknown field in a container fails."""
    deployment = find("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["path"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_configmap_and_secret_are_valid_settings() -> None:
    """crackershop accepts every value of the ConfigMap and Secret template, in production."""
    config = settings()
    assert config.environment == "production"
    assert config.trusted_proxies


def test_secret_template_holds_no_secret() -> None:
    """The Secret template has placeholders only."""
    for value in find("Secret")["stringData"].values():
        assert re.search("REPLACE|USER|PASSWORD", value), value


def test_workers_match_cpu_and_memory_limits() -> None:
    """WORKERS equals the CPU limit and every worker's MAX_MEMORY fits the memory limit."""
    config = settings()
    container = find("Deployment")["spec"]["template"]["spec"]["containers"][0]
    limits = container["resources"]["limits"]
    assert config.workers == int(limits["cpu"])
    master_and_margin = 100 * 2**20
    assert config.workers * config.max_memory + master_and_margin <= quantity(limits["memory"])


def test_grace_period_covers_prestop_and_draining() -> None:
    """terminationGracePeriodSeconds exceeds the preStop pause plus GRACEFUL_TIMEOUT,
    and the probes use /ready and /health."""
    pod = find("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + settings().graceful_timeout
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_dockerfile_runs_unprivileged_with_healthcheck() -> None:
    """The Dockerfile builds in one stage and runs in another, as a non-root
    user, checks /health and stops with SIGTERM."""
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n.*/health", text, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM", text, re.M)


def test_systemd_unit_runs_in_foreground_with_grace() -> None:
    """The unit runs `crackershop serve` (foreground), reloads with SIGHUP and
    waits longer than the default GRACEFUL_TIMEOUT to stop."""
    text = (DEPLOY / "systemd" / "crackershop.service").read_text()
    assert re.search(r"^ExecStart=\S*crackershop serve$", text, re.M)
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    assert stop > load({}, {}, {})[0].graceful_timeout
    assert re.search(r"^User=(?!root)\S+", text, re.M)


def test_nginx_retries_only_idempotent_requests() -> None:
    """nginx's retry list leaves out non_idempotent and sets X-Forwarded-For."""
    text = (DEPLOY / "nginx" / "crackershop.conf").read_text()
    retry = re.search(r"^\s*proxy_next_upstream ([^;]*);", text, re.M)
    assert retry is not None
    assert retry.group(1).split() == ["error", "timeout", "http_502", "http_503"]
    assert "non_idempotent" not in retry.group(1)
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in text
    assert re.search(r"^\s*keepalive \d+;", text, re.M)
