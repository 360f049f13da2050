"""Pure decisions of the reconciler: is a stored Proxy what we want, and what to write instead."""

from __future__ import annotations

from typing import TypeVar

from proxycontroller.config import ControllerConfig
from proxycontroller.model.encoding import COMPRESS_ANNOTATION
from proxycontroller.model.resources import Resource
from proxycontroller.translate.translator import managed_labels

R = TypeVar("R", bound=Resource)


def is_managed(resource: Resource, config: ControllerConfig) -> bool:
    """Ours: carries both labels, the managed-by and this controller instance's."""
    labels = resource.metadata.labels or {}
    return all(labels.get(key) == value for key, value in managed_labels(config).items())


def with_compression(desired: R, spec_bytes: int, threshold: int) -> R:
    """Marks the desired object for Gloo's compressed spec when its spec JSON is over the threshold."""
    if spec_bytes <= threshold:
        return desired
    annotations = {**(desired.metadata.annotations or {}), COMPRESS_ANNOTATION: "true"}
    return desired.model_copy(update={"metadata": desired.metadata.model_copy(update={"annotations": annotations})})


def needs_write(current: Resource, current_spec: bytes, desired: Resource, desired_spec: bytes) -> bool:
    """Only the spec, our labels and the compression choice matter: Gloo writes status into the same object."""
    if current_spec != desired_spec:
        return True
    current_labels = current.metadata.labels or {}
    if any(current_labels.get(k) != v for k, v in (desired.metadata.labels or {}).items()):
        return True
    compress_now = (current.metadata.annotations or {}).get(COMPRESS_ANNOTATION) == "true"
    compress_wanted = (desired.metadata.annotations or {}).get(COMPRESS_ANNOTATION) == "true"
    return compress_now != compress_wanted


def merge_for_write(current: R, desired: R) -> R:
    """What to send to replace `current`: our spec and labels, everything else (status, others' labels and
    annotations, resourceVersion) as read, so a write never clobbers what Gloo or a person added."""
    labels = {**(current.metadata.labels or {}), **(desired.metadata.labels or {})}
    annotations = dict(current.metadata.annotations or {})
    annotations.pop(COMPRESS_ANNOTATION, None)
    annotations.update(desired.metadata.annotations or {})
    update: dict[str, object] = {"labels": labels}
    if annotations or current.metadata.annotations:
        update["annotations"] = annotations
    metadata = current.metadata.model_copy(update=update)
    return current.model_copy(update={"metadata": metadata, "spec": desired.spec})
