"""The node process the kubelet talks to (``python -m kubeletplugin``): thin, over `dra_driver`.

- `settings`: its flags, parsed once into one frozen object;
- `serving`: the gRPC servers on their unix sockets (per-pod names for rolling updates), liveness
  and readiness on TCP;
- `registration`: the plugin-watcher handshake;
- `draservice`: DRA v1 and v1beta1, protobuf in and out, `dra_driver.preparing` in between;
- `health`: the device-health streams (v1, v1alpha1);
- `claimfetching`: GETting the claims the kubelet names;
- `publishing`: the node's pool, kept published by `controller.slicesync`;
- `sweeping`: unpreparing claims deleted behind the kubelet's back;
- `mpsdeployments`: MPS daemons as pinned Deployments (survive plugin restarts);
- `metrics`: Prometheus metrics; `sharemetrics` and `devicemetrics` compute theirs at scrape time
  (each share's usage; each prepared device with its GPU and pods, from `reservations`);
- `protos`: the generated gRPC code (``hack/protos.sh``).
"""

__all__ = [
    "claimfetching",
    "devicemetrics",
    "draservice",
    "health",
    "metrics",
    "mpsdeployments",
    "publishing",
    "registration",
    "reservations",
    "serving",
    "settings",
    "sweeping",
]
