package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	oci "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// cdiResolver does what a CDI-enabled container runtime does with the IDs the kubelet hands it:
// look them up in the spec dir and apply their container edits.
type cdiResolver struct {
	mu     sync.Mutex // the cache is refreshed per call; one resolution at a time
	cache  *cdi.Cache
	strict bool
}

func newCDIResolver(dir string, strict bool) *cdiResolver {
	// No auto-refresh (no fsnotify watch): every resolution rescans the dir explicitly, so a spec
	// written by the plugin just before it answered NodePrepareResources is always seen.
	// NewCache never returns an error in v1.1.x.
	cache, _ := cdi.NewCache(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false))
	return &cdiResolver{cache: cache, strict: strict}
}

// resolve returns what a container with these CDI device IDs would get. Every ID must resolve.
func (r *cdiResolver) resolve(ids []string) (containerRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	record := containerRecord{
		CDIDevices:  append([]string{}, ids...),
		Env:         []string{},
		DeviceNodes: []*cdispec.DeviceNode{},
		Mounts:      []*cdispec.Mount{},
		Hooks:       []*cdispec.Hook{},
	}
	if len(ids) == 0 {
		return record, nil
	}
	// Refresh reports broken spec files; they only matter if an ID we need is missing, and then
	// they are part of the error below.
	_ = r.cache.Refresh()

	// Merge edits in the order Cache.InjectDevices does: a spec's own edits once, before the
	// edits of its first device; then each device's edits.
	merged := &cdi.ContainerEdits{ContainerEdits: &cdispec.ContainerEdits{}}
	seen := map[*cdi.Spec]bool{}
	var problems []string
	for _, id := range ids {
		if _, _, _, err := parser.ParseQualifiedName(id); err != nil {
			problems = append(problems, fmt.Sprintf("invalid CDI device ID %q: %v", id, err))
			continue
		}
		device := r.cache.GetDevice(id)
		if device == nil {
			problems = append(problems, fmt.Sprintf("unresolvable CDI device %s", id))
			continue
		}
		if spec := device.GetSpec(); !seen[spec] {
			seen[spec] = true
			merged.Append(&cdi.ContainerEdits{ContainerEdits: &spec.ContainerEdits})
		}
		merged.Append(&cdi.ContainerEdits{ContainerEdits: &device.ContainerEdits})
	}
	if len(problems) > 0 {
		return record, fmt.Errorf("%s%s", strings.Join(problems, "; "), r.specErrors())
	}

	// Copy the edits into the record before InjectDevices runs: it fills in missing device-node
	// fields in place, in the cached specs.
	if err := deepCopyInto(&record.Env, merged.Env); err != nil {
		return record, err
	}
	if err := deepCopyInto(&record.DeviceNodes, merged.DeviceNodes); err != nil {
		return record, err
	}
	if err := deepCopyInto(&record.Mounts, merged.Mounts); err != nil {
		return record, err
	}
	if err := deepCopyInto(&record.Hooks, merged.Hooks); err != nil {
		return record, err
	}

	// InjectDevices stats every device node that lacks type and major/minor in the spec; with
	// /dev/nvidia* paths on a host without GPUs that fails. Recorded, only fatal when strict.
	ociSpec := &oci.Spec{Process: &oci.Process{}, Linux: &oci.Linux{}}
	if _, err := r.cache.InjectDevices(ociSpec, ids...); err != nil {
		record.InjectError = err.Error()
		if r.strict {
			return record, fmt.Errorf("CDI injection: %w", err)
		}
	}
	return record, nil
}

// specErrors summarizes the spec files that failed to load, for error messages.
func (r *cdiResolver) specErrors() string {
	byPath := r.cache.GetErrors()
	if len(byPath) == 0 {
		return ""
	}
	paths := make([]string, 0, len(byPath))
	for path := range byPath {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	var parts []string
	for _, path := range paths {
		for _, err := range byPath[path] {
			parts = append(parts, fmt.Sprintf("%s: %v", path, err))
		}
	}
	return " (CDI spec errors: " + strings.Join(slices.Compact(parts), "; ") + ")"
}

// deepCopyInto copies via JSON, which is how the values end up in the record anyway.
func deepCopyInto[T any](dst *[]T, src []T) error {
	if len(src) == 0 {
		return nil
	}
	data, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, dst)
}
