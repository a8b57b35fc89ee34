package main

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/pluginmanager/cache"
)

// loggingHandler wraps the DRA manager's registration handler (the one the kubelet gives the
// plugin manager for type "DRAPlugin") to log every step at default verbosity and to keep
// plugins.json up to date; the kubelet itself logs most of this only at -v=3 and higher.
type loggingHandler struct {
	cache.PluginHandler
	log *registrationLog
}

func (h *loggingHandler) ValidatePlugin(ctx context.Context, driver, endpoint string, versions []string) error {
	err := h.PluginHandler.ValidatePlugin(ctx, driver, endpoint, versions)
	if err != nil {
		klog.FromContext(ctx).Error(err, "DRA plugin rejected", "driver", driver, "endpoint", endpoint, "supportedVersions", versions)
		h.log.set(driver, endpoint, versions, err)
	}
	return err
}

func (h *loggingHandler) RegisterPlugin(ctx context.Context, driver, endpoint string, versions []string, timeout *time.Duration) error {
	err := h.PluginHandler.RegisterPlugin(ctx, driver, endpoint, versions, timeout)
	if err != nil {
		klog.FromContext(ctx).Error(err, "DRA plugin registration failed", "driver", driver, "endpoint", endpoint, "supportedVersions", versions)
	} else {
		klog.FromContext(ctx).Info("DRA plugin registered", "driver", driver, "endpoint", endpoint, "supportedVersions", versions)
	}
	h.log.set(driver, endpoint, versions, err)
	return err
}

func (h *loggingHandler) DeRegisterPlugin(ctx context.Context, driver, endpoint string) {
	h.PluginHandler.DeRegisterPlugin(ctx, driver, endpoint)
	klog.FromContext(ctx).Info("DRA plugin deregistered (registration socket removed)", "driver", driver, "endpoint", endpoint)
	h.log.remove(driver, endpoint)
}

// pluginEntry is one endpoint in plugins.json: the outcome of its last registration attempt.
type pluginEntry struct {
	Driver            string   `json:"driver"`
	Endpoint          string   `json:"endpoint"`
	SupportedVersions []string `json:"supportedVersions"`
	Registered        bool     `json:"registered"`
	Error             string   `json:"error"`
}

// registrationLog maintains <records-dir>/plugins.json = {"plugins": [...]}. The file appears
// when the fake kubelet is ready (see write); a deregistered endpoint is dropped from it.
type registrationLog struct {
	mu      sync.Mutex
	records *recordWriter
	entries []pluginEntry
	ready   bool // plugins.json has been written once; before that, changes are only kept
}

func newRegistrationLog(records *recordWriter) *registrationLog {
	return &registrationLog{records: records}
}

func (l *registrationLog) path() string {
	return filepath.Join(l.records.dir, "plugins.json")
}

func (l *registrationLog) set(driver, endpoint string, versions []string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	entry := pluginEntry{Driver: driver, Endpoint: endpoint, SupportedVersions: slices.Clone(versions), Registered: err == nil}
	if entry.SupportedVersions == nil {
		entry.SupportedVersions = []string{}
	}
	if err != nil {
		entry.Error = err.Error()
	}
	l.entries = slices.DeleteFunc(l.entries, func(e pluginEntry) bool { return e.Driver == driver && e.Endpoint == endpoint })
	l.entries = append(l.entries, entry)
	l.writeLocked()
}

func (l *registrationLog) remove(driver, endpoint string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = slices.DeleteFunc(l.entries, func(e pluginEntry) bool { return e.Driver == driver && e.Endpoint == endpoint })
	l.writeLocked()
}

// write creates plugins.json for the first time, which marks the fake kubelet as ready.
func (l *registrationLog) write() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ready = true
	return l.records.writeJSON(l.path(), l.snapshot())
}

func (l *registrationLog) writeLocked() {
	if !l.ready {
		return
	}
	if err := l.records.writeJSON(l.path(), l.snapshot()); err != nil {
		klog.Background().Error(err, "Writing plugins.json failed")
	}
}

func (l *registrationLog) snapshot() map[string][]pluginEntry {
	entries := slices.Clone(l.entries)
	if entries == nil {
		entries = []pluginEntry{}
	}
	return map[string][]pluginEntry{"plugins": entries}
}
