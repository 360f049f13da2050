"""The Kubernetes backend: Gloo's custom resources through lightkube's asyncio client.

Writes are create, or replace carrying the resourceVersion that was read (409 Conflict means re-read and
decide again), so the spec becomes exactly what the controller wants and Gloo's status, written into the
same object (Gloo's CRDs have no status subresource), is never clobbered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx2
from lightkube import ALL_NS, ApiError, AsyncClient, KubeConfig
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import on_error_raise

from proxycontroller.model.encoding import DecodeError, from_cr, to_cr, wants_compression
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.resources import ObjectKey, Resource, ResourceKind
from proxycontroller.store.backoff import Backoff
from proxycontroller.store.cache import ResourceCache
from proxycontroller.store.errors import AlreadyExistsError, ConflictError, NotFoundError, StoreError, UnreadableError
from proxycontroller.store.reports import ProblemReports

log = logging.getLogger(__name__)

R = TypeVar("R", bound=Resource)

BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 30.0
# Watches are re-opened this often even when healthy, as client-go does, so a silently dead connection
# cannot stall the cache for long.
WATCH_SERVER_TIMEOUT_SECONDS = 290
LIST_CHUNK_SIZE = 500


# What a request can fail with besides an answer from the API server: no connection, a timeout, a broken stream.
_TRANSPORT_ERRORS = (httpx2.HTTPError, OSError)


def make_async_client(
    kubeconfig: Path | None = None, context: str | None = None, field_manager: str = "proxycontroller"
) -> AsyncClient:
    """A client from a kubeconfig file, or from the environment (in-cluster service account, $KUBECONFIG,
    ~/.kube/config, in lightkube's order)."""
    config = KubeConfig.from_file(str(kubeconfig)) if kubeconfig else KubeConfig.from_env()
    # The field manager names the controller in managedFields (else it is the HTTP library's name).
    return AsyncClient(config=config.get(context_name=context) if context else config, field_manager=field_manager)


def api_resource(info: ResourceKind) -> Any:
    """lightkube's class for a kind: its own typed model for the core group (a Service; lightkube allows one class
    per kind, and its typed one is what the rest of lightkube uses), a generic resource for Gloo's CRDs."""
    if not info.group:
        return resource_registry.load(info.api_version, info.kind)
    return create_namespaced_resource(info.group, info.version, info.kind, info.plural)


def _key_of(raw: Any) -> ObjectKey:
    return ObjectKey(raw.metadata.namespace or "", raw.metadata.name or "")


def _answer(exc: Exception) -> str:
    """What went wrong, in the API server's words when it answered."""
    if isinstance(exc, ApiError):
        return f"{exc.status.code} {exc.status.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class KubeClient(Generic[R]):
    def __init__(self, kind: type[R], client: AsyncClient) -> None:
        self.kind = kind
        self._client = client
        self._resource = api_resource(kind.KIND)
        self.expired_relists = 0  # how often a watch found its resourceVersion compacted away (410 Gone)
        self.lists = 0  # full lists done by watches (the first one, and one per 410 Gone)

    def _describe(self, key: ObjectKey) -> str:
        return f"{self.kind.KIND.kind} {key}"

    def _decode(self, raw: Any) -> R:
        return from_cr(self.kind, raw.to_dict() if hasattr(raw, "to_dict") else raw)

    def _encode(self, resource: R) -> Any:
        return self._resource.from_dict(to_cr(resource, compress=wants_compression(resource)))

    async def get(self, key: ObjectKey) -> R | None:
        """Raises UnreadableError if the object is there but does not decode (the message says why); its
        resourceVersion and labels are the server's, which reads every object's metadata."""
        try:
            raw = await self._client.get(self._resource, key.name, namespace=key.namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise StoreError(f"{self._describe(key)}: get failed: {_answer(exc)}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StoreError(f"{self._describe(key)}: get failed: {_answer(exc)}") from exc
        try:
            return self._decode(raw)
        except DecodeError as exc:
            meta = raw.metadata  # lightkube parses every object's metadata, whatever its spec and status hold
            labels = (meta.labels if meta is not None else None) or {}
            version = (meta.resourceVersion if meta is not None else None) or ""
            raise UnreadableError(self._describe(key), str(exc), version, labels) from exc

    def _as_written(self, resource: R, raw: Any) -> R:
        """What the server stored after a write: its metadata and status, the spec as sent. Decoding the echoed
        spec again would cost as much as the write itself for a large Proxy, and tell nothing new."""
        echoed = raw.to_dict() if hasattr(raw, "to_dict") else raw
        update: dict[str, Any] = {"metadata": ObjectMeta.model_validate(echoed.get("metadata") or {})}
        if echoed.get("status") is not None:
            update["status"] = self.kind.STATUS_MODEL.model_validate(echoed["status"])
        return resource.model_copy(update=update)

    async def create(self, resource: R) -> R:
        return await self._write("create", resource, {409: (AlreadyExistsError, "already exists")})

    async def replace(self, resource: R) -> R:
        return await self._write(
            "replace",
            resource,
            {409: (ConflictError, "changed since it was read"), 404: (NotFoundError, "is gone")},
        )

    async def _write(self, operation: str, resource: R, meanings: dict[int, tuple[type[StoreError], str]]) -> R:
        """create or replace, with the API server's answer codes turned into the store's errors."""
        write = self._client.create if operation == "create" else self._client.replace
        try:
            raw = await write(self._encode(resource))
        except ApiError as exc:
            error, says = meanings.get(exc.status.code or 0, (StoreError, f"{operation} failed: {_answer(exc)}"))
            raise error(f"{resource.describe()} {says}") from exc
        except _TRANSPORT_ERRORS as exc:
            # The write may or may not have happened: the caller re-reads, as after a conflict.
            raise StoreError(f"{resource.describe()} {operation} failed: {_answer(exc)}") from exc
        try:
            return self._as_written(resource, raw)
        except ValueError as exc:  # pydantic's ValidationError: a status we cannot read came back
            raise StoreError(
                f"{resource.describe()} was written, but the server's answer is unreadable: {exc}"
            ) from exc

    async def delete(self, key: ObjectKey) -> None:
        try:
            await self._client.delete(self._resource, key.name, namespace=key.namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise StoreError(f"{self._describe(key)}: delete failed: {_answer(exc)}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise StoreError(f"{self._describe(key)}: delete failed: {_answer(exc)}") from exc

    async def watch(
        self, cache: ResourceCache[R], namespaces: Sequence[str] | None, labels: dict[str, str] | None = None
    ) -> None:
        scopes: list[str] = list(namespaces) if namespaces is not None else [ALL_NS]
        pending = set(scopes)

        def listed(scope: str) -> None:
            pending.discard(scope)
            if not pending:
                cache.synced.set()

        async with asyncio.TaskGroup() as tasks:
            for scope in scopes:
                tasks.create_task(self._inform(cache, scope, labels, listed))

    async def _inform(
        self, cache: ResourceCache[R], scope: str, labels: dict[str, str] | None, listed: Callable[[str], None]
    ) -> None:
        """List, then watch from the list's resourceVersion. A dropped connection resumes the watch from the
        last resourceVersion seen (after capped backoff); only 410 Gone, when that version has been compacted
        away, costs a full relist."""
        what = f"{self.kind.KIND.plural} in {'all namespaces' if scope == ALL_NS else scope}"
        backoff = Backoff(BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS)
        reports = ProblemReports(log)  # across relists: an unreadable object is reported once per version
        version: str | None = None
        while True:
            try:
                if version is None:
                    items, version = await self._list(scope, labels, reports)
                    if scope == ALL_NS:
                        cache.replace_all(items)
                    else:
                        cache.replace_namespace(scope, items)
                    listed(scope)
                    self.lists += 1
                async for event, raw in self._events(scope, labels, version):
                    backoff.reset()
                    version = raw.metadata.resourceVersion or version
                    if event == "BOOKMARK":
                        continue  # it only moves the resourceVersion forward
                    key = _key_of(raw)
                    if event == "DELETED":
                        reports.clear(key)
                        cache.remove(key)
                        continue
                    cached = cache.get(key)
                    if cached is not None and cached.metadata.resource_version == raw.metadata.resourceVersion:
                        continue  # the echo of our own write, already cached: no need to decode it again
                    decoded = self._decode_or_report(raw, reports)
                    if decoded is None:
                        cache.remove(key)  # an object we cannot read must not keep an older reading alive
                    else:
                        cache.upsert(decoded)
            except (ApiError, httpx2.HTTPStatusError) as exc:
                code = exc.status.code if isinstance(exc, ApiError) else exc.response.status_code
                if code == 410:
                    self.expired_relists += 1
                    version = None
                    log.info("watch of %s: resourceVersion expired (410 Gone); relisting", what)
                    continue
                delay = backoff.next()
                log.warning("watch of %s failed (%s); retrying in %.1fs", what, _answer(exc), delay)
                await asyncio.sleep(delay)
            except _TRANSPORT_ERRORS as exc:
                delay = backoff.next()
                log.warning("watch of %s: connection lost (%s); reconnecting in %.1fs", what, _answer(exc), delay)
                await asyncio.sleep(delay)

    def _decode_or_report(self, raw: Any, reports: ProblemReports) -> R | None:
        """The object, or None if it does not decode: then it is reported, once per resourceVersion."""
        key = _key_of(raw)
        try:
            decoded = self._decode(raw)
        except DecodeError as exc:
            version = raw.metadata.resourceVersion
            reports.report(
                key, version, f"skipping unreadable {self._describe(key)} (resourceVersion {version}): {exc}"
            )
            return None
        if reports.clear(key):
            log.info("%s is readable again", self._describe(key))
        return decoded

    async def _list(self, scope: str, labels: dict[str, str] | None, reports: ProblemReports) -> tuple[list[R], str]:
        selector: Any = dict(labels) if labels else None
        listing = self._client.list(self._resource, namespace=scope, labels=selector, chunk_size=LIST_CHUNK_SIZE)
        items = []
        listed: set[ObjectKey] = set()
        async for raw in listing:
            listed.add(_key_of(raw))
            decoded = self._decode_or_report(raw, reports)
            if decoded is not None:
                items.append(decoded)
        reports.keep_only(lambda key: key in listed)
        return items, listing.resourceVersion

    def _events(self, scope: str, labels: dict[str, str] | None, version: str) -> AsyncIterator[tuple[str, Any]]:
        # lightkube's public watch() does not ask for bookmarks; its request builder does take the parameter.
        # Bookmarks keep the resourceVersion fresh on quiet watches, so a reconnect rarely needs a relist.
        generic = self._client._client
        request = generic.prepare_request(
            "list",
            res=self._resource,
            namespace=scope,
            watch=True,
            params={
                "timeoutSeconds": WATCH_SERVER_TIMEOUT_SECONDS,
                "resourceVersion": version,
                "allowWatchBookmarks": "true",
                "labelSelector": ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None,
            },
        )
        events: AsyncIterator[tuple[str, Any]] = generic.watch(request, on_error=on_error_raise)
        return events
