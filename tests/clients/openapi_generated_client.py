"""Drives llamactl's management API with a client generated from its OpenAPI document.

Usage: openapi_generated_client.py BASE_URL MANAGEMENT_KEY INSTANCE_NAME OPTIONS_JSON
The package `llamactl_client` (openapi-python-client's output for the served document) must be
importable (PYTHONPATH). Every call goes through the generated functions and models; an answer
the document does not describe raises (raise_on_unexpected_status). Prints one line per check
and exits non-zero on the first failure.
"""
import json
import sys
import time

from llamactl_client import AuthenticatedClient, Client
from llamactl_client.api.instances import (
    create_instance,
    delete_instance,
    get_instance,
    list_instances,
    start_instance,
    stop_instance,
)
from llamactl_client.api.keys import create_key, delete_key, list_keys
from llamactl_client.api.open_ai import list_models
from llamactl_client.api.system import get_health
from llamactl_client.models import (
    CreateKeyRequest,
    CreateKeyResponse,
    ErrorBody,
    InstanceOptionsSchema,
    InstancePermissionRequest,
    InstanceResponse,
    ModelList,
)

base, management_key, name, options_json = sys.argv[1:5]


def client_with(key):
    return AuthenticatedClient(base_url=base, token=key, raise_on_unexpected_status=True, timeout=120)


def expect(response, status, kind):
    """The answer has this status and was parsed as this generated model."""
    assert response.status_code == status, f"{response.status_code}: {response.content!r}"
    if kind is not None:
        assert isinstance(response.parsed, kind), f"{type(response.parsed)}: {response.content!r}"
    return response.parsed


manage = client_with(management_key)

health = get_health.sync(client=Client(base_url=base, raise_on_unexpected_status=True))
assert health.status == "ok", health
print("getHealth ok:", health.status)

body = InstanceOptionsSchema.from_dict(json.loads(options_json))
created = expect(create_instance.sync_detailed(name, client=manage, body=body), 201, InstanceResponse)
assert created.name == name and created.status == "stopped", created
print("createInstance ok:", created.name, created.status)

again = expect(create_instance.sync_detailed(name, client=manage, body=body), 409, ErrorBody)
print("createInstance twice ok:", again.error)

listed = list_instances.sync(client=manage)
assert [i.name for i in listed] == [name], listed
print("listInstances ok:", [i.name for i in listed])

started = expect(start_instance.sync_detailed(name, client=manage), 200, InstanceResponse)
assert started.status in ("starting", "running"), started
deadline = time.monotonic() + 120
while True:
    current = expect(get_instance.sync_detailed(name, client=manage), 200, InstanceResponse)
    if current.status == "running" and current.ready:
        break
    assert current.status in ("starting", "running"), current
    assert time.monotonic() < deadline, f"{name} did not become ready: {current}"
    time.sleep(0.1)
print("startInstance ok:", current.status, "pid", current.pid, "port", current.port)

request = CreateKeyRequest(
    name="generated-client",
    permission_mode="per_instance",
    instance_permissions=[InstancePermissionRequest(instance_name=name, can_infer=True)],
)
key = expect(create_key.sync_detailed(client=manage, body=request), 201, CreateKeyResponse)
assert key.key.startswith("llamactl-") and key.key == key.key_secret, key
assert key.id in [k.id for k in list_keys.sync(client=manage)]
print("createKey ok: id", key.id)

models = expect(list_models.sync_detailed(client=client_with(key.key)), 200, ModelList)
assert [m.id for m in models.data] == [name], models
print("listModels with the new key ok:", [m.id for m in models.data])

expect(delete_key.sync_detailed(key.id, client=manage), 204, None)
refused = list_models.sync_detailed(client=client_with(key.key))
assert refused.status_code == 401, refused
print("deleteKey ok: the key is refused with", refused.status_code)

stopped = expect(stop_instance.sync_detailed(name, client=manage), 200, InstanceResponse)
assert stopped.status == "stopped", stopped
print("stopInstance ok:", stopped.status)

expect(delete_instance.sync_detailed(name, client=manage), 204, None)
gone = expect(get_instance.sync_detailed(name, client=manage), 404, ErrorBody)
assert gone.error == "not_found", gone
assert list_instances.sync(client=manage) == []
print("deleteInstance ok:", gone.error)
