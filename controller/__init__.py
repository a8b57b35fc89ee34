"""The ResourceSlice controller (used by every node's plugin) and the cluster controller process.

Talking to the API server: `rest` (plain-JSON requests through the official client), `errors`
(what a failed request means for the caller), `watching` (watches another thread can cut off),
`connecting` (the client both processes make, from a kubeconfig or in-cluster).

The node side, a library of the kubelet plugin: `capabilities` (what the server supports, and so
the publishing mode), `slicediff` (planning the writes that make the server's slices equal the
desired pool), `slicesync` (sending them, watching for drift).

The cluster controller (``python -m controller``, its flags parsed by `settings`), one replica
leading through a Lease (`leaderelection` over `leases`), every replica serving the webhook:

- `slicegc`: deletes our slices whose Node is gone (at start, on Node deletion, periodically);
- `deviceclasses`: the three DeviceClasses, kept in place by server-side apply;
- `admission` and `webhook`: the validating admission webhook for the opaque configs of claims
  and claim templates (decisions; the HTTPS server with reloaded certificates);
- `looping`: the retry/backoff loop each leader duty runs in.
"""

__all__ = [
    "admission",
    "capabilities",
    "connecting",
    "deviceclasses",
    "errors",
    "leaderelection",
    "leases",
    "looping",
    "rest",
    "settings",
    "slicediff",
    "slicegc",
    "slicesync",
    "watching",
    "webhook",
]
