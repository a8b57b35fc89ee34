package main

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// removeCgroup removes the cgroup dirs of a pod's cgroup parent, given relative to the
// runtime's own cgroup (as --cgroup-root makes it). runc creates such a path below its own
// cgroup in every v1 hierarchy and beside it on v2, and removes only the containers' leaves, so
// the pod level is ours to remove, as the kubelet removes its pod cgroups. The dirs are found by
// their path suffix under every cgroup mount; an empty dir is removed, a busy one is an error.
func removeCgroup(relative string) error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	suffix := string(filepath.Separator) + filepath.Clean(relative)
	var found []string
	for _, mount := range mounts {
		_ = filepath.WalkDir(mount, func(path string, entry fs.DirEntry, err error) error {
			if err != nil || !entry.IsDir() {
				return nil
			}
			if strings.HasSuffix(path, suffix) {
				found = append(found, path)
				_ = filepath.WalkDir(path, func(sub string, e fs.DirEntry, err error) error {
					if err == nil && e.IsDir() && sub != path {
						found = append(found, sub)
					}
					return nil
				})
				return filepath.SkipDir
			}
			return nil
		})
	}
	// Deepest first: a cgroup with children cannot be removed.
	sort.Slice(found, func(i, j int) bool { return strings.Count(found[i], "/") > strings.Count(found[j], "/") })
	var errs []error
	for _, dir := range found {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cgroupMounts lists the mount points of cgroup v1 hierarchies and of cgroup v2.
func cgroupMounts() ([]string, error) {
	file, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var mounts []string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		for i, field := range fields {
			if field == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				mounts = append(mounts, fields[4])
			}
		}
	}
	return mounts, scanner.Err()
}
