"""Checks made before `run` or `status` touch a store, so that a wrong path, kubeconfig or cluster ends in one
line that says what is wrong, instead of an empty Proxy in a mistyped tree or a traceback from the client.

The checks mirror what the stores do afterwards (lightkube's kubeconfig lookup, the directory layout); they
read, never write.
"""

from __future__ import annotations

import difflib
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx2
import msgspec
from lightkube import ALL_NS, ApiError, AsyncClient, ConfigError, KubeConfig, SingleConfig
from lightkube.config.kubeconfig import DEFAULT_KUBECONFIG, SERVICE_ACCOUNT

from proxycontroller.manager.backends import BackendChoice
from proxycontroller.model.documents import DocumentError, read_yaml_file
from proxycontroller.model.resources import ResourceKind
from proxycontroller.store.kube import api_resource

# Gloo's directory config source: the `config/` folder of the tree `gloo --dir` names, one folder per kind.
EXPECTED_TREE = (
    "Gloo's directory config tree (the config/ folder of Gloo's --dir tree, holding upstreams/, proxies/...)"
)


class StartupError(Exception):
    """What the command line names cannot be used (a path, a kubeconfig); one line, exit status 2."""

    exit_code = 2


class ClusterUnavailable(StartupError):
    """The cluster did not answer as the controller needs (unreachable, credentials refused, RBAC, no CRD);
    exit status 1: the command line may be right and the cluster not ready."""

    exit_code = 1


def check_config_dir(path: Path) -> None:
    """`path` must be Gloo's directory config tree: a directory holding `upstreams/`. Anything else is most likely
    a typo, and the directory store would otherwise create a fresh tree there and write an empty Proxy into it."""
    flag = f"--config-dir {path}"
    try:
        if not path.exists():
            raise StartupError(f"{flag}: no such directory{_did_you_mean(_close_sibling(path))}")
        if not path.is_dir():
            raise StartupError(f"{flag}: not a directory; expected {EXPECTED_TREE}")
        upstreams = path / "upstreams"
        if upstreams.is_dir():
            return
        if upstreams.exists():
            raise StartupError(f"{flag}: {upstreams} is not a directory; expected {EXPECTED_TREE}")
    except OSError as exc:  # e.g. a parent that cannot be searched
        raise StartupError(f"{flag}: {exc.strerror or exc}") from exc
    raise StartupError(
        f"{flag}: upstreams/ is missing there; expected {EXPECTED_TREE}{_did_you_mean(_tree_near(path))}"
    )


def _did_you_mean(candidate: Path | None) -> str:
    return f"; did you mean {candidate}?" if candidate is not None else ""


def _tree_near(path: Path) -> Path | None:
    """Gloo's config tree one level off: `path` is Gloo's --dir root, or one of the tree's kind folders."""
    for candidate in (path / "config", path.parent):
        if candidate != path and (candidate / "upstreams").is_dir():
            return candidate
    return None


def _close_sibling(path: Path) -> Path | None:
    """An existing directory whose name is close to the missing one's (a typo in the last part)."""
    parent = path.parent
    try:
        names = [child.name for child in parent.iterdir() if child.is_dir()] if parent.is_dir() else []
    except OSError:
        return None
    match = difflib.get_close_matches(path.name, names, n=1, cutoff=0.75)
    return parent / match[0] if match else None


def load_kube_config(kubeconfig: Path | None, context: str | None) -> tuple[SingleConfig, str]:
    """The context the Kubernetes store will use, found as lightkube finds it (`--kubeconfig`; else the pod's
    service account, $KUBECONFIG, ~/.kube/config), and where it came from; StartupError if there is none or it
    cannot be used."""
    if kubeconfig is not None:
        return _from_file(kubeconfig, context), f"kubeconfig {kubeconfig}"
    account = Path(SERVICE_ACCOUNT)
    if (account / "token").exists():
        try:
            single = KubeConfig.from_service_account().get()
        except KeyError as exc:  # a token, but no KUBERNETES_SERVICE_HOST or _PORT
            raise StartupError(f"in-cluster service account {account}: ${exc.args[0]} is not set") from exc
        except (ConfigError, OSError) as exc:
            raise StartupError(f"in-cluster service account {account}: cannot be used: {_reason(exc)}") from exc
        assert single is not None  # get() without a default returns a config or raises
        return single, f"in-cluster service account {account}"
    from_env = os.environ.get("KUBECONFIG")
    path = Path(os.environ.get("KUBECONFIG", DEFAULT_KUBECONFIG)).expanduser()
    if not path.is_file():
        where = f"$KUBECONFIG ({from_env!r}) names no file" if from_env is not None else f"no {DEFAULT_KUBECONFIG}"
        raise StartupError(
            f"no kubeconfig: not in a pod (no {account}/token) and {where}; "
            "pass --kubeconfig FILE, or --config-dir DIR for Gloo's directory mode"
        )
    return _from_file(path, context), f"kubeconfig {path}"


def _from_file(path: Path, context: str | None) -> SingleConfig:
    where = f"kubeconfig {path}"
    try:
        raw = read_yaml_file(path)
    except DocumentError as exc:
        raise StartupError(f"kubeconfig {exc}") from exc
    if not isinstance(raw, dict):
        raise StartupError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        config = KubeConfig.from_dict(raw, fname=path)
    except KeyError as exc:
        raise StartupError(f"{where}: not a kubeconfig: missing key {exc}") from exc
    except (TypeError, AttributeError, msgspec.ValidationError) as exc:
        # lightkube reads clusters, contexts and users with no checks of its own: these are its parse errors.
        raise StartupError(f"{where}: not a kubeconfig: malformed clusters, contexts or users: {exc}") from exc
    name = context or config.current_context
    known = ", ".join(sorted(config.contexts)) or "none"
    if name is None:
        raise StartupError(f"{where}: no current-context; pass --context (contexts: {known})")
    if name not in config.contexts:
        raise StartupError(f"{where}: no context {name!r} (contexts: {known})")
    chosen = config.contexts[name]
    if chosen.cluster not in config.clusters:
        raise StartupError(f"{where}: context {name!r} names cluster {chosen.cluster!r}, which is not defined")
    if chosen.user and chosen.user not in config.users:
        raise StartupError(f"{where}: context {name!r} names user {chosen.user!r}, which is not defined")
    single = config.get(context_name=name)
    assert single is not None  # get() with a name returns a config or raises
    _check_files(single, f"{where}: context {name!r}")
    return single


def _check_files(single: SingleConfig, where: str) -> None:
    """The files a context names (relative to the kubeconfig) exist: else the TLS setup fails with an error
    that does not say which file."""
    user = single.user
    named = [("certificate-authority", single.cluster.certificate_auth)]
    if user is not None:
        named += [("client-certificate", user.client_cert), ("client-key", user.client_key)]
        named += [("tokenFile", user.token_file)]
    for key, value in named:
        if value and not Path(single.abs_file(value)).is_file():
            raise StartupError(f"{where}: {key} {single.abs_file(value)}: no such file")


async def check_cluster(
    choice: BackendChoice,
    reads: list[tuple[ResourceKind, tuple[str, ...] | None]],
    timeout: float,
) -> None:
    """Lists one object of each (kind, namespaces) in `reads` (None: all namespaces), as the watches will:
    ClusterUnavailable, naming the cluster and what failed, if the API server is unreachable, refuses the
    credentials or the RBAC rules, or does not know the kind."""
    single, source = load_kube_config(choice.kubeconfig, choice.context)
    where = f"cluster {single.cluster.server} ({source}, context {single.context_name})"
    try:
        client = AsyncClient(config=single, timeout=httpx2.Timeout(timeout))
    except (ConfigError, OSError, ssl.SSLError) as exc:  # a certificate or key file named but unusable
        raise StartupError(f"{source}: context {single.context_name}: cannot be used: {_reason(exc)}") from exc
    try:
        for kind, namespaces in reads:
            resource = api_resource(kind)
            for namespace in namespaces or (ALL_NS,):
                await _list_one(client, resource, kind, namespace, where, timeout)
    finally:
        await client.close()


async def _list_one(
    client: AsyncClient, resource: Any, kind: ResourceKind, namespace: Any, where: str, timeout: float
) -> None:
    what = f"{kind.plural}.{kind.group}" if kind.group else kind.plural  # the core group has no name
    what += " in all namespaces" if namespace is ALL_NS else f" in {namespace}"
    try:
        async for _ in client.list(resource, namespace=namespace, chunk_size=1):
            break
    except ApiError as exc:
        code, message = exc.status.code, exc.status.message
        if code == 401:
            raise ClusterUnavailable(f"{where} refused the credentials: 401 {message}") from exc
        if code == 403:
            raise ClusterUnavailable(f"{where}: not allowed to list {what}: {message}") from exc
        if code == 404:
            raise ClusterUnavailable(f"{where} does not serve {what}: are Gloo's CRDs installed?") from exc
        raise ClusterUnavailable(f"{where}: listing {what} failed: {code} {message}") from exc
    except httpx2.TimeoutException as exc:
        raise ClusterUnavailable(f"{where}: no answer within {timeout:g}s") from exc
    except httpx2.HTTPError as exc:
        raise ClusterUnavailable(f"{where} is unreachable: {_reason(exc)}") from exc
    except (ConfigError, OSError) as exc:  # an exec credential plugin that fails, a token file that went away
        raise ClusterUnavailable(f"{where}: cannot authenticate: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The root cause of a connection failure in a few words ("connection refused"), not httpx's summary."""
    seen: BaseException | None = exc
    deepest = exc
    while seen is not None:
        deepest = seen
        seen = seen.__cause__ or seen.__context__
    if isinstance(deepest, ssl.SSLCertVerificationError):
        return f"TLS: {deepest.verify_message}"
    if isinstance(deepest, ssl.SSLError):
        return f"TLS: {deepest.reason or deepest}"
    if isinstance(deepest, socket.gaierror):
        return f"cannot resolve the host: {deepest.strerror}"
    if isinstance(deepest, OSError) and deepest.errno and deepest.errno > 0:
        text = os.strerror(deepest.errno).lower()
        return f"{deepest.filename}: {text}" if deepest.filename else text
    return str(deepest) or type(deepest).__name__


# For the other commands that talk to a cluster (`url`): the same few words for the same failures.
failure_reason = _reason
