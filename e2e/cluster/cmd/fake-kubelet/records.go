package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// podRecord is what the containers of a pod would get from the runtime: the CDI device IDs
// returned by the DRA manager's GetResources and the merged CDI container edits. Written as
// <records-dir>/<namespace>_<pod>.json (namespaces cannot contain "_", so names never clash).
type podRecord struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	// Containers, init containers included, by name. Empty while Error is set.
	Containers map[string]containerRecord `json:"containers"`
	// Last Prepare (or CDI resolution, or container start) or Unprepare failure; "" once prepared.
	Error string `json:"error"`
	// With --container-runtime-endpoint: the pod's CRI sandbox.
	SandboxID string `json:"sandboxID,omitempty"`
}

type containerRecord struct {
	// CDI device IDs in the order the kubelet would pass them to the runtime.
	CDIDevices []string `json:"cdiDevices"`
	// The edits of the specs and devices of CDIDevices, merged in the order the CDI library
	// applies them (spec-level edits once per spec, before its first device's edits).
	Env         []string              `json:"env"`
	DeviceNodes []*cdispec.DeviceNode `json:"deviceNodes"`
	Mounts      []*cdispec.Mount      `json:"mounts"`
	Hooks       []*cdispec.Hook       `json:"hooks"`
	// Error from applying the edits to an empty OCI spec with the CDI library's InjectDevices,
	// as a runtime would; typically a device node that does not exist on this host. Only an
	// error for the pod with --strict-cdi-injection.
	InjectError string `json:"injectError"`

	// With --container-runtime-endpoint only (absent otherwise): the container the runtime
	// started with CDIDevices, its state ("created", "running", "exited"), its exit code once
	// exited, its CRI log, and the first line of its stdout that is a JSON object: what the
	// test program in it reports it saw.
	ContainerID string          `json:"containerID,omitempty"`
	State       string          `json:"state,omitempty"`
	ExitCode    *int32          `json:"exitCode,omitempty"`
	LogPath     string          `json:"logPath,omitempty"`
	Seen        json.RawMessage `json:"seen,omitempty"`
}

// recordWriter writes the per-pod records and plugins.json atomically (temp file + rename),
// so a reader never sees a half-written file.
type recordWriter struct {
	dir string
}

func (w *recordWriter) podPath(namespace, name string) string {
	return filepath.Join(w.dir, namespace+"_"+name+".json")
}

func (w *recordWriter) writePod(record *podRecord) error {
	if record.Containers == nil {
		record.Containers = map[string]containerRecord{}
	}
	return w.writeJSON(w.podPath(record.Namespace, record.Pod), record)
}

// removePod deletes the record of the pod with this UID. A record of a newer pod with the same
// name (the old one was force-deleted and recreated) is kept.
func (w *recordWriter) removePod(namespace, name, uid string) error {
	path := w.podPath(namespace, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var old podRecord
	if json.Unmarshal(data, &old) == nil && old.UID != uid {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (w *recordWriter) writeJSON(path string, value any) error {
	data, err := json.MarshalIndent(value, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(w.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
