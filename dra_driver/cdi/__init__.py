"""CDI spec files: how a prepared claim's devices reach its containers.

The prepare flow writes one spec file per claim (``k8s.gpu.dra.dev-claim_<claimUID>.json`` in the
CDI dir, ``/var/run/cdi`` by default) after isolation is set up and before the checkpoint records
the claim as completed; the fully qualified device IDs go back to the kubelet, and the container
runtime resolves them from the file. Unprepare removes the file; start-up reconciliation lists the
files present and removes those that no checkpoint entry owns.

- `naming`: the CDI kind, file names, device names and their validation.
- `spec`: the spec's content as frozen dataclasses, validated and rendered to CDI JSON.
- `writing`: writing, removing and listing the spec files.
- `errors`: what can go wrong, by what the caller should do.
"""

from dra_driver.cdi import errors, naming, spec, writing

__all__ = ["errors", "naming", "spec", "writing"]
