"""Direct reads of a host cluster with the kubernetes client (no engine involved).

Used before an apply (who owns these namespaces?), by ``vcm status`` / ``vcm drift`` and to hand out
kubeconfigs. Functions take the target explicitly and raise ``ProvisionError`` with the server named.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from vcluster_mgr import errors, fingerprint, naming, platformconfig

STACK_ANNOTATION = naming.STACK_ANNOTATION


def api_client(target: platformconfig.Target) -> client.ApiClient:
    try:
        # new_client_from_config is unannotated in the kubernetes client
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig, context=target.context)
        return api
    except (config.ConfigException, OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise errors.ProvisionError(
            f"cannot load the kubeconfig for host cluster {target.name!r} "
            f"({target.kubeconfig or 'default resolution'}): {exc}") from exc


def server_of(api: client.ApiClient) -> str:
    return str(api.configuration.host)


def _unreachable(api: client.ApiClient, exc: Exception) -> errors.ProvisionError:
    return errors.ProvisionError(f"the API server {server_of(api)} is not reachable: {exc}")


def _read_namespace(api: client.ApiClient, name: str) -> dict[str, Any] | None:
    """One namespace as plain JSON, or None if it does not exist.

    Read through the generic ``ApiClient`` rather than ``CoreV1Api``, whose module alone takes 0.7 to 3 s
    to import on 2 cores: this is on the path of every ``vcm apply``, which needs nothing else from it.
    """
    try:
        request = api.param_serialize("GET", "/api/v1/namespaces/{name}", path_params={"name": name},
                                      auth_settings=["BearerToken"])
        resp = api.call_api(*request, _request_timeout=15)
        resp.read()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    except ApiException as exc:
        raise errors.ProvisionError(f"reading namespace {name} on {server_of(api)}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    if resp.status == 404:
        return None
    if not 200 <= resp.status < 300:
        raise errors.ProvisionError(f"reading namespace {name} on {server_of(api)}: {resp.status} {resp.reason}")
    try:
        doc = json.loads(resp.data or b"")
    except ValueError as exc:
        raise errors.ProvisionError(f"reading namespace {name} on {server_of(api)}: not JSON") from exc
    return doc if isinstance(doc, dict) else None


def cluster_uid(target: platformconfig.Target) -> str:
    """The identity of a host cluster: the UID of its ``kube-system`` namespace, made once when the cluster
    was created and never reused, whatever its server address or kubeconfig say."""
    api = api_client(target)
    try:
        obj = _read_namespace(api, "kube-system")
    except errors.ProvisionError as exc:
        raise errors.ProvisionError(f"{exc} (to identify host cluster {target.name!r})") from exc
    uid = ((obj or {}).get("metadata") or {}).get("uid")
    if not uid:
        raise errors.ProvisionError(f"namespace kube-system on {server_of(api)} has no UID")
    return str(uid)


def namespace_owners(target: platformconfig.Target, namespaces: list[str]) -> dict[str, dict[str, str]]:
    """For each existing namespace: its tenant label, managed-by label and owning stack annotation."""
    api = api_client(target)
    found: dict[str, dict[str, str]] = {}
    for ns in namespaces:
        obj = _read_namespace(api, ns)
        if obj is None:
            continue
        meta = obj.get("metadata") or {}
        labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
        found[ns] = {
            "tenant": labels.get(naming.TENANT_LABEL, ""),
            "managedBy": labels.get(naming.MANAGED_BY_KEY, ""),
            "stack": annotations.get(STACK_ANNOTATION, ""),
        }
    return found


def check_ownership(target: platformconfig.Target, tenant: str, namespaces: list[str], stack: str) -> None:
    """Refuse to take over namespaces that belong to someone else, naming the owner."""
    problems = []
    for ns, owner in namespace_owners(target, namespaces).items():
        if owner["stack"] == stack:
            continue  # ours, even if its labels were changed by hand (the apply puts them back)
        if owner["managedBy"] != naming.MANAGED_BY_VALUE:
            problems.append(f"namespace {ns} already exists and is not managed by vcluster-mgr")
        elif owner["tenant"] != tenant:
            problems.append(f"namespace {ns} belongs to tenant {owner['tenant']!r}")
        elif owner["stack"] and owner["stack"] != stack:
            problems.append(f"namespace {ns} of tenant {tenant!r} is owned by stack {owner['stack']!r}")
    if problems:
        raise errors.ProvisionError(f"refusing to apply tenant {tenant!r} to host cluster {target.name!r}: "
                                    + "; ".join(problems))


def get_object(target: platformconfig.Target, api_version: str, kind: str, name: str,
               namespace: str | None) -> dict[str, Any] | None:
    """One live object as a dict, or None if it does not exist (dynamic client: any kind)."""
    from kubernetes import dynamic

    api = api_client(target)
    try:
        dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
        res = dyn.resources.get(api_version=api_version, kind=kind)
        obj = res.get(name=name, namespace=namespace) if namespace else res.get(name=name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise errors.ProvisionError(f"reading {kind} {name} on {server_of(api)}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    return obj.to_dict()  # type: ignore[no-any-return]


def owner_kubeconfig(target: platformconfig.Target, *, user: str, groups: tuple[str, ...], namespaces: list[str],
                     expiration_seconds: int = 24 * 3600, timeout: float = 60.0) -> str:
    """A kubeconfig authenticating as ``user`` with a client certificate signed by the cluster, with one
    context per tenant namespace (named ``<namespace>@vcm-<cluster>``), the first one current.

    Owners cannot list namespaces (that would show them every tenant), so the contexts are how they find
    their own: ``kubectl config get-contexts``, then ``kubectl get namespace <ns>``.

    Uses the Kubernetes CSR API (signer ``kubernetes.io/kube-apiserver-client``): the admin's
    credentials create and approve the request, the cluster's signer issues the certificate. The
    private key never leaves this process except in the returned text.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not namespaces:
        raise errors.ProvisionError(f"no namespaces to make a kubeconfig for {user}")
    api = api_client(target)
    certs = client.CertificatesV1Api(api)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
                        + [x509.NameAttribute(NameOID.COMMON_NAME, user)])
    csr_pem = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM)
    name = f"vcm-{naming.owner_binding_name('user', 'User', user)}-{int(time.time())}"
    body = client.V1CertificateSigningRequest(
        metadata=client.V1ObjectMeta(name=name, labels={naming.MANAGED_BY_KEY: naming.MANAGED_BY_VALUE}),
        spec=client.V1CertificateSigningRequestSpec(
            request=base64.b64encode(csr_pem).decode(), signer_name="kubernetes.io/kube-apiserver-client",
            usages=["client auth"], expiration_seconds=expiration_seconds))
    try:
        certs.create_certificate_signing_request(body)
        csr = certs.read_certificate_signing_request(name)
        assert csr.status is not None  # the server always returns a status object, empty when new
        csr.status.conditions = [client.V1CertificateSigningRequestCondition(
            type="Approved", status="True", reason="VcmKubeconfig", message="issued by vcm kubeconfig")]
        certs.replace_certificate_signing_request_approval(name, csr)
        deadline = time.monotonic() + timeout
        cert_b64 = None
        while time.monotonic() < deadline:
            status = certs.read_certificate_signing_request(name).status
            cert_b64 = status.certificate if status else None
            if cert_b64:
                break
            time.sleep(0.2)
        if not cert_b64:
            raise errors.ProvisionError(
                f"the cluster at {server_of(api)} approved but did not sign the certificate for {user} within "
                f"{timeout:.0f}s (is the kube-apiserver-client signer enabled in kube-controller-manager?)")
    except ApiException as exc:
        raise errors.ProvisionError(f"certificate request for {user} on {server_of(api)}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    finally:
        try:
            certs.delete_certificate_signing_request(name)
        except (ApiException, HTTPError, OSError):
            pass
    cfg = api.configuration
    ca_data = open(cfg.ssl_ca_cert, "rb").read() if cfg.ssl_ca_cert else b""  # noqa: SIM115
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cluster_name = f"vcm-{target.name}"
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": cfg.host, "certificate-authority-data": base64.b64encode(ca_data).decode()}}],
        "users": [{"name": user, "user": {"client-certificate-data": cert_b64,
                                           "client-key-data": base64.b64encode(key_pem).decode()}}],
        "contexts": [{"name": f"{ns}@{cluster_name}", "context": {
            "cluster": cluster_name, "user": user, "namespace": ns}} for ns in namespaces],
        "current-context": f"{namespaces[0]}@{cluster_name}",
    }
    return yaml.safe_dump(doc, sort_keys=False)


def host_api_addresses(target: platformconfig.Target) -> list[dict[str, Any]]:
    """Where pods reach the host cluster's API server: the ``default/kubernetes`` Service (cluster IP, port) and
    every address and port it is NATed to (its EndpointSlices), sorted, as ``{"ip", "port"}``.

    Looked up at each apply of a tenant with a control plane (a strict tenant's control plane gets egress to
    exactly these) and recorded in its stack, so ``vcm drift`` can say when the cluster moved its API server.
    """
    api = api_client(target)
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    try:
        svc = core.read_namespaced_service("kubernetes", "default", _request_timeout=15)
        slices = discovery.list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=kubernetes", _request_timeout=15).items
    except ApiException as exc:
        raise errors.ProvisionError(f"reading Service default/kubernetes and its EndpointSlices on {server_of(api)} "
                                    f"(the control plane's route to the API server): {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    found = set()
    spec = svc.spec
    for ip in (spec.cluster_ips if spec and spec.cluster_ips else [spec.cluster_ip] if spec else []):
        for port in (spec.ports or []) if spec else []:
            if ip and ip != "None" and port.name == "https":
                found.add((str(ip), int(port.port)))
    for sl in slices:
        ports = [int(p.port) for p in (sl.ports or []) if p.port is not None and p.name == "https"]
        for ep in sl.endpoints or []:
            for ip in ep.addresses or []:
                found.update((str(ip), port) for port in ports)
    if not found:
        raise errors.ProvisionError(f"Service default/kubernetes on {server_of(api)} has no https port or endpoints: "
                                    "cannot tell where the control plane reaches the API server")
    return [{"ip": ip, "port": port} for ip, port in sorted(found)]


def host_api_drift(target: platformconfig.Target, recorded: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A drift row when the API server's addresses differ from those recorded at apply (none if equal or never
    recorded): the control plane's egress rule then points at the old ones until the next apply."""
    if not recorded:
        return []
    live = host_api_addresses(target)
    if {(a["ip"], int(a["port"])) for a in live} == {(str(a.get("ip")), int(a.get("port", 0))) for a in recorded}:
        return []
    return [{"object": "Service default/kubernetes (and its endpoints)", "field": "addresses",
             "desired": recorded, "live": live}]


def _drift(path: str, desired: Any, live: Any, out: list[dict[str, Any]]) -> None:
    """Every field we set whose live value differs (server additions ignored; empty == absent)."""
    empty: tuple[Any, ...] = ({}, [], None)
    if desired is None:
        return
    if desired in ({}, []) and live in empty:
        return
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            out.append({"field": path or ".", "desired": desired, "live": live})
            return
        for key, value in desired.items():
            if not str(key).startswith("__"):
                _drift(f"{path}.{key}" if path else str(key), value, live.get(key), out)
    elif isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            out.append({"field": path, "desired": desired, "live": live})
            return
        for i, (d, lv) in enumerate(zip(desired, live, strict=False)):
            _drift(f"{path}[{i}]", d, lv, out)
    elif desired != live and not (isinstance(desired, (int, float)) and isinstance(live, (int, float))
                                  and float(desired) == float(live)):
        out.append({"field": path, "desired": desired, "live": live})


def drift(target: platformconfig.Target, applied: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare what was applied with the live objects: one row per changed field or missing object."""
    rows: list[dict[str, Any]] = []
    for obj in applied:
        inputs = obj["inputs"]
        if "apiVersion" not in inputs or "kind" not in inputs:
            continue  # a Helm release: its objects are the chart's, not fields the blueprint set
        meta = inputs.get("metadata", {})
        ns, name = meta.get("namespace"), meta.get("name")
        what = f"{inputs.get('kind')} {ns + '/' if ns else ''}{name}"
        live = get_object(target, inputs["apiVersion"], inputs["kind"], name, ns)
        if live is None:
            rows.append({"object": what, "field": "(object)", "desired": "present", "live": "deleted"})
            continue
        found: list[dict[str, Any]] = []
        _drift("", {k: v for k, v in inputs.items() if not k.startswith("__")}, live, found)
        rows.extend({"object": what, **f} for f in found)
    return rows


def wait_namespaces_active(target: platformconfig.Target, namespaces: list[str], *, timeout: float = 120) -> None:
    """Wait until every namespace exists and is Active; say what is missing when the time is up."""
    api = api_client(target)
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pending = list(namespaces)
    while pending and time.monotonic() < deadline:
        still = []
        for ns in pending:
            try:
                status = core.read_namespace(ns, _request_timeout=10).status
                if status is None or status.phase != "Active":
                    still.append(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise errors.ProvisionError(f"reading namespace {ns} on {server_of(api)}: {exc.reason}") from exc
                still.append(ns)
            except (HTTPError, OSError) as exc:
                raise _unreachable(api, exc) from exc
        pending = still
        if pending:
            time.sleep(0.5)
    if pending:
        raise errors.ProvisionError(f"namespaces {', '.join(pending)} not active on {server_of(api)} "
                                    f"after {timeout:.0f}s")


def control_plane_server(target: platformconfig.Target, tenant: Any) -> tuple[str, str]:
    """(server URL, how to reach it) for the tenant's control plane, from its exposure."""
    cp = tenant.spec.control_plane
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    if cp.exposure.ingress_host:
        return f"https://{cp.exposure.ingress_host}", "through the Ingress"
    if cp.exposure.type == "LoadBalancer":
        api = api_client(target)
        try:
            svc = client.CoreV1Api(api).read_namespaced_service(release, namespace, _request_timeout=10)
            balancer = svc.status.load_balancer if svc.status else None
            found = (balancer.ingress if balancer else None) or []
            ingress = found[0] if found else None
        except (ApiException, HTTPError, OSError):
            ingress = None
        if ingress is not None:
            return f"https://{ingress.ip or ingress.hostname}:443", "through the LoadBalancer"
    cluster_ip = _service_cluster_ip(target, release, namespace)
    if cluster_ip and _this_machine_is_a_node(target):
        # a node routes ClusterIPs (the local host cluster's machine is one): the Service follows the pod when it
        # is replaced, and the control plane's certificate names the ClusterIP
        return f"https://{cluster_ip}:443", "at the Service's ClusterIP, which this machine (a node) routes to"
    return ("https://localhost:8443",
            f"after `kubectl port-forward -n {namespace} svc/{release} 8443:443` on the host cluster")


def _service_cluster_ip(target: platformconfig.Target, name: str, namespace: str) -> str | None:
    api = api_client(target)
    try:
        svc = client.CoreV1Api(api).read_namespaced_service(name, namespace, _request_timeout=10)
    except (ApiException, HTTPError, OSError):
        return None
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    ip = svc.spec.cluster_ip if svc.spec else None
    return str(ip) if ip and ip != "None" else None


def _this_machine_is_a_node(target: platformconfig.Target) -> bool:
    """Whether one of the cluster's nodes has an InternalIP that is an address of this machine: then its proxy
    routes the cluster's ClusterIPs here. Decided without sending a packet (a ClusterIP is otherwise routed to
    the default gateway): an address is this machine's when a socket can bind to it."""
    api = api_client(target)
    try:
        nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
    except (ApiException, HTTPError, OSError):
        return False
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    for node in nodes:
        for address in (node.status.addresses if node.status else None) or []:
            if address.type == "InternalIP" and _is_local_address(str(address.address)):
                return True
    return False


def _is_local_address(ip: str) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, 0))
        except OSError:
            return False
    return True


def control_plane_kubeconfig(target: platformconfig.Target, tenant: Any, *, wait: float = 0.0,
                             progress: Any = None) -> str | None:
    """The virtual cluster's admin kubeconfig from its Secret ``vc-<release>``, server pointed at the chosen
    exposure; None if the Secret is not there (after waiting up to ``wait`` seconds, saying so)."""
    release = naming.control_plane_release(tenant.name)
    namespace = tenant.namespace_names()[0]
    secret_name = naming.control_plane_kubeconfig_secret(release)
    api = api_client(target)
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            secret = core.read_namespaced_secret(secret_name, namespace, _request_timeout=10)
            break
        except ApiException as exc:
            if exc.status != 404:
                raise errors.ProvisionError(f"reading Secret {namespace}/{secret_name} on {server_of(api)}: "
                                            f"{exc.reason}") from exc
        except (HTTPError, OSError) as exc:
            raise _unreachable(api, exc) from exc
        if time.monotonic() >= deadline:
            return None
        if progress and not announced:
            progress(f"waiting up to {wait:.0f}s for Secret {namespace}/{secret_name}, which the virtual cluster "
                     "writes once its control plane runs")
            announced = True
        time.sleep(1.0)
    raw = (secret.data or {}).get("config")
    if not raw:
        raise errors.ProvisionError(f"Secret {namespace}/{secret_name} has no `config` key")
    doc = yaml.safe_load(base64.b64decode(raw))
    server, _ = control_plane_server(target, tenant)
    for entry in doc.get("clusters", []):
        entry.setdefault("cluster", {})["server"] = server
    return str(yaml.safe_dump(doc, sort_keys=False))


def tenant_quotas(
    target: platformconfig.Target, *, tenant: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The Namespaces and ResourceQuotas of every tenant (or of one), as the API server sends them.

    Two list calls whatever the fleet's size: one for namespaces, one for quotas across all namespaces,
    both by label selector, read as raw JSON (no model objects: at 1000 tenants those cost more than the
    requests). Not paged: 2000 quotas are a few MB.
    """
    import json

    selector = f"{naming.MANAGED_BY_KEY}={naming.MANAGED_BY_VALUE}"
    selector += f",{naming.TENANT_LABEL}={tenant}" if tenant else f",{naming.TENANT_LABEL}"
    api = api_client(target)
    core = client.CoreV1Api(api)
    try:
        # with _preload_content=False the client returns the raw urllib3 response, not the typed list
        ns_resp: Any = core.list_namespace(label_selector=selector, _preload_content=False, _request_timeout=60)
        q_resp: Any = core.list_resource_quota_for_all_namespaces(
            label_selector=selector, _preload_content=False, _request_timeout=60
        )
        namespaces: list[dict[str, Any]] = json.loads(ns_resp.data)["items"]
        quotas: list[dict[str, Any]] = json.loads(q_resp.data)["items"]
    except ApiException as exc:
        raise errors.ProvisionError(f"listing tenant namespaces and quotas on {server_of(api)}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    return namespaces, quotas


def record_verify(target: platformconfig.Target, namespace: str, result: dict[str, Any]) -> None:
    """Record a verify result on the tenant's first namespace (annotation ``LAST_VERIFY_ANNOTATION``)."""
    import json

    api = api_client(target)
    body = {"metadata": {"annotations": {naming.LAST_VERIFY_ANNOTATION: json.dumps(result, sort_keys=True)}}}
    try:
        client.CoreV1Api(api).patch_namespace(namespace, body, field_manager="vcm-verify", _request_timeout=15)
    except ApiException as exc:
        raise errors.ProvisionError(f"recording the verify result on namespace {namespace}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client


def last_verify(namespaces: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The verify result recorded on the first of these namespaces (raw objects from ``tenant_quotas``)."""
    import json

    for ns in sorted(namespaces, key=lambda n: str(n.get("metadata", {}).get("name"))):
        text = (ns.get("metadata", {}).get("annotations") or {}).get(naming.LAST_VERIFY_ANNOTATION)
        if text:
            try:
                found = json.loads(text)
            except ValueError:
                return {"passed": None, "note": f"unreadable {naming.LAST_VERIFY_ANNOTATION} annotation"}
            return found if isinstance(found, dict) else None
    return None


def list_objects(target: platformconfig.Target, path: str, selector: str) -> list[dict[str, Any]]:
    """Every object of one resource (``path``: ``/api/v1/namespaces``, ``/apis/<group>/<version>/<plural>``),
    in all namespaces, whose labels match ``selector``: one LIST request, read as plain JSON through the
    generic client (no API group module imported). Each item gets its ``apiVersion`` and ``kind`` back (a
    LIST leaves them out of its items)."""
    api = api_client(target)
    try:
        request = api.param_serialize("GET", path, query_params=[("labelSelector", selector)],
                                      auth_settings=["BearerToken"])
        resp = api.call_api(*request, _request_timeout=60)
        resp.read()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    except ApiException as exc:
        raise errors.ProvisionError(f"listing {path} on {server_of(api)}: {exc.reason}") from exc
    except (HTTPError, OSError) as exc:
        raise _unreachable(api, exc) from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]  # unannotated in the kubernetes client
    if not 200 <= resp.status < 300:
        raise errors.ProvisionError(f"listing {path} on {server_of(api)}: {resp.status} {resp.reason}")
    try:
        doc = json.loads(resp.data or b"")
    except ValueError as exc:
        raise errors.ProvisionError(f"listing {path} on {server_of(api)}: not JSON") from exc
    kind = str(doc.get("kind", "")).removesuffix("List")
    items = doc.get("items") or []
    return [{"apiVersion": doc.get("apiVersion"), "kind": kind, **item} for item in items]


def live_digests(target: platformconfig.Target, kinds: set[tuple[str, str]], selector: str,
                 keep: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, str]:
    """``fingerprint.object_key`` -> content digest (``fingerprint.object_digest``) of every live object of
    ``kinds`` (each in ``fingerprint.PROVABLE``) matching the label ``selector`` (and ``keep``, if given): one
    LIST per kind, whatever the number of tenants the digests serve."""
    found: dict[str, str] = {}
    for api_version, kind in sorted(kinds):
        base, plural, _ = fingerprint.PROVABLE[(api_version, kind)]
        for obj in list_objects(target, f"{base}/{plural}", selector):
            if keep is None or keep(obj):
                found[fingerprint.key_of(obj)] = fingerprint.object_digest(api_version, kind, obj)
    return found
