"""deploy/: the Kubernetes manifests and the image recipe, checked offline.

Every Kubernetes object is validated against the API's JSON schemas that the
kubernetes-validate package ships (strict: unknown fields fail; no network).
The ServiceMonitor is a Prometheus Operator resource whose schema is not among
them: its fields that matter here are checked by hand.  The DaemonSet's
arguments are parsed by the real ``nsctl serve`` parser, and the files they
name must come from Secret volumes mounted owner-only.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KUBE = DEPLOY / "kubernetes"
K8S_VERSION = "1.30.0"      # the oldest release whose fields these manifests use
PORT = 9477


def _objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "apiVersion" in doc:
                out.append((path.name, doc))
    return out


def _one(kind: str) -> dict[str, Any]:
    found = [doc for _name, doc in _objects() if doc["kind"] == kind]
    assert len(found) == 1, (kind, len(found))
    return found[0]


def _container() -> dict[str, Any]:
    containers = _one("DaemonSet")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_every_manifest_is_a_valid_kubernetes_object() -> None:
    objects = _objects()
    kinds = {doc["kind"] for _name, doc in objects}
    assert {"DaemonSet", "Service", "NetworkPolicy", "ServiceAccount",
            "ServiceMonitor"} <= kinds, kinds
    for name, doc in objects:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue     # a CRD: no schema in the package (checked below)
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}: {exc.message} at "
                        f"{'.'.join(map(str, exc.path))}")


def test_probes_are_http_and_secrets_owner_only() -> None:
    container = _container()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        assert "tcpSocket" not in spec and spec["httpGet"]["path"] == "/healthz", probe
        assert spec["httpGet"]["scheme"] == "HTTPS", probe
    volumes = _one("DaemonSet")["spec"]["template"]["spec"]["volumes"]
    secrets = [v for v in volumes if "secret" in v]
    assert {v["secret"]["secretName"] for v in secrets} == {
        "nsctl-token", "nsctl-metrics-token", "nsctl-tls"}
    for v in secrets:
        assert v["secret"]["defaultMode"] == 0o400, v
    sc = container["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["privileged"]
    # The API server refuses allowPrivilegeEscalation: false beside SYS_ADMIN.
    assert "SYS_ADMIN" in sc["capabilities"]["add"] and sc["allowPrivilegeEscalation"]


def _args() -> list[str]:
    container = _container()
    assert "command" not in container       # the image's entrypoint: nsctl
    args = container["args"]
    assert args[0] == "serve"
    return args[1:]


def test_daemonset_args_are_what_nsctl_serve_accepts() -> None:
    """The real parser: an option nsctl serve lacks fails here (--metrics-token-file
    comes with the HTTP hardening)."""
    from nsctl.cli.serve import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(_args())
    except SystemExit:
        pytest.fail(f"nsctl serve refuses the DaemonSet's arguments: {shlex.join(_args())}")
    assert args.listen == f"0.0.0.0:{PORT}"
    assert args.tls_cert and args.tls_key and args.token_file
    assert getattr(args, "metrics_token_file", None)


def test_files_the_server_reads_come_from_owner_only_secrets() -> None:
    mounts = {m["name"]: m["mountPath"] for m in _container()["volumeMounts"]}
    volumes = {v["name"]: v for v in _one("DaemonSet")["spec"]["template"]["spec"]["volumes"]}
    files = [a.split("=", 1)[1] for a in _args()
             if a.split("=", 1)[0] in ("--token-file", "--metrics-token-file", "--tls-cert",
                                       "--tls-key")]
    assert len(files) == 4, _args()
    for path in files:
        name = next((n for n, m in mounts.items() if path.startswith(m.rstrip("/") + "/")), None)
        assert name is not None, f"{path}: on no volume"
        assert volumes[name]["secret"]["defaultMode"] == 0o400, path


def test_only_the_scraper_reaches_the_port() -> None:
    policy = _one("NetworkPolicy")["spec"]
    labels = _one("DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] and peer["podSelector"]["matchLabels"]
    assert rule["ports"] == [{"port": PORT, "protocol": "TCP"}]
    # The same port all the way: container, Service, ServiceMonitor.
    (port,) = _container()["ports"]
    assert port["containerPort"] == PORT
    (service_port,) = _one("Service")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"] and service_port["port"] == PORT


def test_prometheus_scrapes_metrics_only_over_tls() -> None:
    (endpoint,) = _one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == _one("Service")["spec"]["ports"][0]["name"]
    assert endpoint["scheme"] == "https" and endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["credentials"]["name"] == "nsctl-metrics-token"
    assert endpoint["tlsConfig"]["serverName"] and endpoint["tlsConfig"]["ca"]["secret"]
    assert "insecureSkipVerify" not in endpoint["tlsConfig"]
    (job,) = yaml.safe_load((KUBE / "prometheus-scrape.yaml").read_text())
    assert job["scheme"] == "https" and job["metrics_path"] == "/metrics"
    assert "nsctl-metrics-token" in job["authorization"]["credentials_file"]
    assert job["tls_config"]["ca_file"] and not job["tls_config"].get("insecure_skip_verify")


# --- the image ------------------------------------------------------------------------------

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s\\]+)")


def _pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a requirements file in pip's hash-checking form."""
    text = path.read_text().replace("\\\n", " ")
    out = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _PIN.match(line)
        assert m, f"{path.name}: not an exact pin: {line}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        assert hashes, f"{path.name}: {m['name']} has no sha256"
        out[m["name"].lower().replace("_", "-")] = (m["version"], hashes)
    return out


def test_image_dependencies_are_pinned_with_hashes() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for base in re.findall(r"^FROM\s+(\S+)", dockerfile, re.M):
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*", base), f"unpinned base {base}"
    installs = re.findall(r"pip install ([^&\n]*)", dockerfile)
    for line in installs:
        assert "--require-hashes" in line or "--no-index" in line, line
    assert sum("--require-hashes" in line for line in installs) == 2
    runtime = _pins(DEPLOY / "requirements.txt")
    assert _pins(DEPLOY / "requirements-build.txt")
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    for dep in map(Requirement, project["dependencies"]):
        name = dep.name.lower().replace("_", "-")
        assert name in runtime, f"{name} is not pinned for the image"
        assert Version(runtime[name][0]) in dep.specifier, (name, runtime[name][0])
