"""The NVIDIA driver on the node, as containers need it: what goes into every claim's CDI spec.

`roots` says where the driver is (host path, the plugin's view, the proc files); `discovery` finds
its libraries, binaries, firmware and sockets the way NVIDIA's Container Toolkit does;
`devicenodes` names the control, GPU and MIG capability nodes; `editing` turns all of it into CDI
container edits with ``nvidia-cdi-hook`` hooks, which `hooks` installs on the host; `caching` holds
the result for the prepare flow and notices a driver upgrade. Nothing here writes a spec: that is
`dra_driver.cdi`, called by `dra_driver.preparing`.
"""

__all__ = ["caching", "devicenodes", "discovery", "editing", "errors", "hooks", "roots"]
