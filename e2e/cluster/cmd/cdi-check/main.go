// Command cdi-check validates CDI specs with the CDI Go library that container runtimes use.
//
//	cdi-check <spec-dir> [<vendor/class=name>...]
//
// It loads every spec in spec-dir (validating vendor, class, device names and container edits)
// and prints one line per problem or ID:
//
//	error spec <path>: <why>    a spec file that failed to load, or a conflict between specs
//	ok <id>                     the ID resolves to a device
//	error <id>: <why>           it does not
//
// The exit status is 0 only if every ID resolves and no spec has errors, 1 otherwise, 2 on
// wrong usage. It does not stat device nodes (see FAKE-KUBELET.md).
package main

import (
	"fmt"
	"os"
	"sort"

	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: cdi-check <spec-dir> [<vendor/class=name>...]")
		os.Exit(2)
	}
	os.Exit(check(os.Args[1], os.Args[2:]))
}

func check(dir string, ids []string) int {
	// A missing dir would silently look like an empty one to the cache.
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		if err == nil {
			err = fmt.Errorf("not a directory")
		}
		fmt.Printf("error spec %s: %v\n", dir, err)
		return 1
	}
	cache, _ := cdi.NewCache(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false)) // never fails in v1.1.x
	_ = cache.Refresh()                                                         // errors: GetErrors below

	status := 0
	byPath := cache.GetErrors()
	paths := make([]string, 0, len(byPath))
	for path := range byPath {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for _, err := range byPath[path] {
			fmt.Printf("error spec %s: %v\n", path, err)
			status = 1
		}
	}

	for _, id := range ids {
		if _, _, _, err := parser.ParseQualifiedName(id); err != nil {
			fmt.Printf("error %s: %v\n", id, err)
			status = 1
			continue
		}
		if cache.GetDevice(id) == nil {
			fmt.Printf("error %s: no such device in %s\n", id, dir)
			status = 1
			continue
		}
		fmt.Printf("ok %s\n", id)
	}
	return status
}
