#!/usr/bin/env python3
"""The Python `kubernetes` client against a running `stead server`.

Loads the kubeconfig named by $KUBECONFIG and walks every served resource through create, read,
list (label selector), watch (ADDED, then MODIFIED after a patch), strategic / merge / JSON patch,
replace and delete (Background propagation, then waits for 404); then the StatefulSet `scale` and
`status` subresources. The client validates every response against the OpenAPI-required fields
(pydantic), so a missing required field fails the step that read it.

Prints one PASS/FAIL line per step and, last, `N passed, M failed`; exits non-zero on any failure.
Run: `pip install kubernetes && KUBECONFIG=... python3 tests/e2e/python/test_client.py`.
"""

import sys
import time
import traceback

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

NS = "default"
CASE_LABEL = "stead.test/case"
WAIT_SECONDS = 10
# Kinds whose upstream store sets `ReturnDeletedObject: true` (the rest answer a Status).
RETURNS_DELETED_OBJECT = {
    "pod",
    "service",
    "service_account",
    "persistent_volume",
    "persistent_volume_claim",
    "storage_class",
}


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, step):
        self.passed += 1
        print(f"PASS {step}", flush=True)

    def fail(self, step, error):
        self.failed += 1
        print(f"FAIL {step}: {error}", flush=True)


class StepFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise StepFailed(message)


def describe(error):
    """One readable paragraph for a failure, with the server's body for API errors."""
    if isinstance(error, ApiException):
        return f"ApiException {error.status} {error.reason}: {error.body}"
    if isinstance(error, StepFailed):
        return str(error)
    # pydantic ValidationError and friends: the message names the missing field.
    return f"{type(error).__name__}: {error}\n" + "".join(traceback.format_exception(error)[-3:])


class Resource:
    """How to reach one served resource through the generated API class."""

    def __init__(self, label, api, snake, namespaced, fixture):
        self.label = label
        self.api = api
        self.snake = snake
        self.namespaced = namespaced
        self.fixture = fixture

    def method(self, verb):
        infix = "namespaced_" if self.namespaced else ""
        return getattr(self.api, f"{verb}_{infix}{self.snake}")

    def _ns(self):
        return {"namespace": NS} if self.namespaced else {}

    def create(self, body):
        return self.method("create")(body=body, **self._ns())

    def read(self, name):
        return self.method("read")(name=name, **self._ns())

    def list(self, **kwargs):
        return self.method("list")(**self._ns(), **kwargs)

    def patch(self, name, body, **kwargs):
        return self.method("patch")(name=name, body=body, **self._ns(), **kwargs)

    def replace(self, name, body):
        return self.method("replace")(name=name, body=body, **self._ns())

    def delete(self, name, **kwargs):
        return self.method("delete")(name=name, **self._ns(), **kwargs)

    def watch(self, **kwargs):
        return watch.Watch().stream(self.method("list"), **self._ns(), **kwargs)


def first_event(stream, name, wanted_type):
    """The first event for `name`; the stream is closed afterwards."""
    seen = []
    for event in stream:
        obj = event["object"]
        meta = getattr(obj, "metadata", None)
        seen.append(event["type"])
        if meta is not None and meta.name == name and event["type"] == wanted_type:
            stream.close()
            return obj
    raise StepFailed(f"no {wanted_type} event for {name} within the watch; saw {seen}")


def exercise(results, res):
    """Runs the verb walk for one resource; later steps need only the created object, so only a
    failed create ends the walk."""
    body = res.fixture
    name = body["metadata"]["name"]
    body["metadata"].setdefault("labels", {})[CASE_LABEL] = name
    selector = f"{CASE_LABEL}={name}"
    state = {}

    def create():
        obj = res.create(body)
        expect(obj.metadata.name == name, f"created name {obj.metadata.name}")
        expect(obj.metadata.uid, "created object has no uid")
        expect(obj.metadata.resource_version, "created object has no resourceVersion")
        expect(obj.metadata.creation_timestamp, "created object has no creationTimestamp")
        state["uid"] = obj.metadata.uid
        state["rv"] = obj.metadata.resource_version
        state["managers"] = [(m.manager, m.operation) for m in obj.metadata.managed_fields or []]

    def create_manager():
        # Upstream names a create without ?fieldManager after the User-Agent's first segment
        # ("OpenAPI-Generator/37.0.2/python" -> "OpenAPI-Generator").
        managers = state["managers"]
        expect(
            managers == [("OpenAPI-Generator", "Update")],
            f"managedFields after create: {managers}",
        )

    def read():
        obj = res.read(name)
        expect(obj.metadata.uid == state["uid"], f"read uid {obj.metadata.uid}")
        expect((obj.metadata.labels or {}).get(CASE_LABEL) == name, "label missing on read")

    def list_by_label():
        items = res.list(label_selector=selector).items
        names = [i.metadata.name for i in items]
        expect(names == [name], f"list {selector} returned {names}")
        none = res.list(label_selector=f"{CASE_LABEL}=no-such-case").items
        expect(none == [], f"unmatched selector listed {len(none)} items")

    def watch_added():
        first_event(res.watch(label_selector=selector, timeout_seconds=3), name, "ADDED")

    def strategic_patch():
        # A dict body goes out as application/strategic-merge-patch+json.
        obj = res.patch(name, {"metadata": {"labels": {"stead.test/smp": "yes"}}})
        labels = obj.metadata.labels or {}
        expect(labels.get("stead.test/smp") == "yes", f"labels after SMP {labels}")
        expect(labels.get(CASE_LABEL) == name, f"SMP dropped the case label: {labels}")

    def watch_modified():
        obj = first_event(
            res.watch(
                label_selector=selector,
                resource_version=state["rv"],
                timeout_seconds=3,
            ),
            name,
            "MODIFIED",
        )
        labels = obj.metadata.labels or {}
        expect(labels.get("stead.test/smp") == "yes", f"MODIFIED object labels {labels}")

    def merge_patch():
        obj = res.patch(
            name,
            {"metadata": {"annotations": {"stead.test/merge": "1"}}},
            _content_type="application/merge-patch+json",
        )
        annotations = obj.metadata.annotations or {}
        expect(annotations.get("stead.test/merge") == "1", f"annotations {annotations}")

    def json_patch():
        # A list body goes out as application/json-patch+json.
        obj = res.patch(
            name,
            [{"op": "add", "path": "/metadata/annotations/stead.test~1json", "value": "2"}],
        )
        annotations = obj.metadata.annotations or {}
        expect(annotations.get("stead.test/json") == "2", f"annotations {annotations}")

    def server_side_apply():
        applied = {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": {"name": name, "annotations": {"stead.test/ssa": "py"}},
        }
        obj = res.patch(
            name,
            applied,
            field_manager="py-e2e",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        annotations = obj.metadata.annotations or {}
        expect(annotations.get("stead.test/ssa") == "py", f"annotations {annotations}")
        expect(annotations.get("stead.test/merge") == "1", f"apply dropped a field: {annotations}")
        managers = [(m.manager, m.operation) for m in obj.metadata.managed_fields or []]
        expect(("py-e2e", "Apply") in managers, f"managedFields after apply: {managers}")

    def replace():
        current = res.read(name)
        current.metadata.annotations = dict(current.metadata.annotations or {})
        current.metadata.annotations["stead.test/replace"] = "1"
        obj = res.replace(name, current)
        expect(
            (obj.metadata.annotations or {}).get("stead.test/replace") == "1",
            "replace lost the annotation",
        )
        expect(
            obj.metadata.resource_version != current.metadata.resource_version,
            "replace kept the resourceVersion",
        )

    def delete():
        result = res.delete(name, propagation_policy="Background")
        if res.snake == "namespace":
            # A namespace terminates until its spec.finalizers are cleared (by the namespace
            # controller; here by hand through the finalize subresource).
            expect(
                result.get("status", {}).get("phase") == "Terminating"
                if isinstance(result, dict)
                else getattr(result, "status", None) is not None,
                f"namespace delete answered {result}, upstream answers the Terminating namespace",
            )
            ns = client.CoreV1Api().read_namespace(name)
            expect(ns.status.phase == "Terminating", f"namespace phase {ns.status.phase}")
            ns.spec.finalizers = []
            client.CoreV1Api().replace_namespace_finalize(name, ns)
        elif res.snake in RETURNS_DELETED_OBJECT:
            # Upstream `ReturnDeletedObject: true`: the body is the object (the client's declared
            # return type), never a Status parsed into it.
            expect(
                getattr(result, "kind", None) != "Status" and result.metadata.name == name,
                f"delete answered a Status, upstream answers the deleted object: {result}",
            )
        else:
            kind = result.get("kind") if isinstance(result, dict) else getattr(result, "kind", None)
            expect(kind == "Status", f"delete answered {result}, upstream answers a Status")
        if res.snake in ("persistent_volume_claim", "persistent_volume"):
            # Held by the pvc-/pv-protection finalizer the server adds on create until the volume
            # controller (not running here) sees it unused; do its part by hand.
            res.patch(
                name,
                {"metadata": {"finalizers": []}},
                _content_type="application/merge-patch+json",
            )
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                res.read(name)
            except ApiException as e:
                expect(e.status == 404, f"read after delete: {e.status} {e.body}")
                return
            expect(time.monotonic() < deadline, f"{name} still exists after delete")
            time.sleep(0.1)

    steps = [
        ("create", create),
        ("create field manager", create_manager),
        ("read", read),
        ("list", list_by_label),
        ("watch ADDED", watch_added),
        ("patch strategic", strategic_patch),
        ("watch MODIFIED", watch_modified),
        ("patch merge", merge_patch),
        ("patch json", json_patch),
        ("server-side apply", server_side_apply),
        ("replace", replace),
        ("delete", delete),
    ]
    for i, (step, run) in enumerate(steps):
        label = f"{res.label} {step}"
        try:
            run()
        except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
            results.fail(label, describe(e))
            if step == "create":
                for skipped, _ in steps[i + 1 :]:
                    results.fail(f"{res.label} {skipped}", "not run: create failed")
                return
            continue
        results.ok(label)


def statefulset_fixture(name):
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]},
            },
        },
    }


def resources():
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    storage = client.StorageV1Api()
    coordination = client.CoordinationV1Api()
    discovery = client.DiscoveryV1Api()
    events = client.EventsV1Api()
    return [
        Resource(
            "configmap",
            core,
            "config_map",
            True,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "py-cm"},
                "data": {"greeting": "hello"},
            },
        ),
        Resource(
            "endpoints",
            core,
            "endpoints",
            True,
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": "py-ep"},
                "subsets": [
                    {
                        "addresses": [{"ip": "10.0.0.1"}],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                    }
                ],
            },
        ),
        Resource(
            "event (v1)",
            core,
            "event",
            True,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "web-0.py1"},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "web-0",
                    "namespace": NS,
                },
                "reason": "Testing",
                "message": "hello from the python client",
                "type": "Normal",
                "source": {"component": "stead-e2e"},
                "firstTimestamp": "2025-01-01T00:00:00Z",
                "lastTimestamp": "2025-01-01T00:00:00Z",
                "count": 1,
            },
        ),
        Resource(
            "namespace",
            core,
            "namespace",
            False,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "py-ns"}},
        ),
        Resource(
            "node",
            core,
            "node",
            False,
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "py-node"}, "spec": {}},
        ),
        Resource(
            "persistentvolumeclaim",
            core,
            "persistent_volume_claim",
            True,
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "py-pvc"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ),
        Resource(
            "persistentvolume",
            core,
            "persistent_volume",
            False,
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": "py-pv"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "hostPath": {"path": "/tmp/py-pv"},
                },
            },
        ),
        Resource(
            "pod",
            core,
            "pod",
            True,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "py-pod"},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "busybox:1.36",
                            "command": ["sleep", "3600"],
                            "ports": [{"containerPort": 8080}],
                        },
                    ]
                },
            },
        ),
        Resource(
            "secret",
            core,
            "secret",
            True,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "py-secret"},
                "type": "Opaque",
                "data": {"password": "aHVudGVyMg=="},
            },
        ),
        Resource(
            "serviceaccount",
            core,
            "service_account",
            True,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "py-sa"}},
        ),
        Resource(
            "service",
            core,
            "service",
            True,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "py-svc"},
                "spec": {
                    "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
            },
        ),
        Resource(
            "controllerrevision",
            apps,
            "controller_revision",
            True,
            {
                "apiVersion": "apps/v1",
                "kind": "ControllerRevision",
                "metadata": {"name": "py-cr"},
                "revision": 1,
                "data": {"spec": {"template": {"$patch": "replace"}}},
            },
        ),
        Resource("statefulset", apps, "stateful_set", True, statefulset_fixture("py-sts")),
        Resource(
            "event (events.k8s.io/v1)",
            events,
            "event",
            True,
            {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": "web-0.py2"},
                "eventTime": "2025-01-01T00:00:00.000000Z",
                "reportingController": "stead.io/e2e",
                "reportingInstance": "e2e-1",
                "action": "Testing",
                "reason": "Testing",
                "type": "Normal",
                "note": "hello from the python client",
                "regarding": {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": NS},
            },
        ),
        Resource(
            "storageclass",
            storage,
            "storage_class",
            False,
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "py-sc"},
                "provisioner": "stead.io/local",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "WaitForFirstConsumer",
            },
        ),
        Resource(
            "lease",
            coordination,
            "lease",
            True,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "py-lease"},
                "spec": {"holderIdentity": "e2e", "leaseDurationSeconds": 15},
            },
        ),
        Resource(
            "endpointslice",
            discovery,
            "endpoint_slice",
            True,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": "py-eps"},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
            },
        ),
    ]


def statefulset_subresources(results):
    apps = client.AppsV1Api()
    name = "py-scale"

    def setup():
        apps.create_namespaced_stateful_set(NS, statefulset_fixture(name))

    def read_scale():
        scale = apps.read_namespaced_stateful_set_scale(name, NS)
        expect(scale.metadata.name == name, f"scale name {scale.metadata.name}")
        expect(scale.spec.replicas == 1, f"scale spec.replicas {scale.spec.replicas}")

    def patch_scale():
        scale = apps.patch_namespaced_stateful_set_scale(name, NS, {"spec": {"replicas": 3}})
        expect(scale.spec.replicas == 3, f"patched scale spec.replicas {scale.spec.replicas}")
        sts = apps.read_namespaced_stateful_set(name, NS)
        expect(sts.spec.replicas == 3, f"statefulset spec.replicas {sts.spec.replicas}")

    def patch_status():
        sts = apps.patch_namespaced_stateful_set_status(
            name,
            NS,
            {"spec": {"replicas": 7}, "status": {"replicas": 2, "currentRevision": "py-abc"}},
        )
        expect(sts.status.replicas == 2, f"status.replicas {sts.status.replicas}")
        expect(sts.status.current_revision == "py-abc", "status.currentRevision not set")
        expect(
            sts.spec.replicas == 3, f"a status patch changed spec.replicas to {sts.spec.replicas}"
        )
        again = apps.read_namespaced_stateful_set_status(name, NS)
        expect(again.status.replicas == 2, f"read status.replicas {again.status.replicas}")

    def cleanup():
        apps.delete_namespaced_stateful_set(name, NS, propagation_policy="Background")

    for step, run in [
        ("create", setup),
        ("read scale", read_scale),
        ("patch scale", patch_scale),
        ("patch status", patch_status),
        ("delete", cleanup),
    ]:
        label = f"statefulset subresources {step}"
        try:
            run()
        except Exception as e:  # noqa: BLE001
            results.fail(label, describe(e))
            continue
        results.ok(label)


def not_found(results):
    label = "configmap read missing is 404 NotFound"
    try:
        client.CoreV1Api().read_namespaced_config_map("no-such-configmap", NS)
        results.fail(label, "read of a missing configmap succeeded")
    except ApiException as e:
        if e.status == 404 and '"reason":"NotFound"' in (e.body or "").replace(" ", ""):
            results.ok(label)
        else:
            results.fail(label, describe(e))
    except Exception as e:  # noqa: BLE001
        results.fail(label, describe(e))


def main():
    config.load_kube_config()  # reads $KUBECONFIG
    results = Results()
    for res in resources():
        exercise(results, res)
    statefulset_subresources(results)
    not_found(results)
    print(f"{results.passed} passed, {results.failed} failed", flush=True)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
