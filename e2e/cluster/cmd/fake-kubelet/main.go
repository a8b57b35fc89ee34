// Command fake-kubelet drives DRA kubelet plugins through the kubelet's own code, by default
// without a container runtime. It is built from Kubernetes v1.37.2's plugin manager
// (k8s.io/kubernetes/pkg/kubelet/pluginmanager) and DRA manager (.../pkg/kubelet/cm/dra), so
// registration, service negotiation, the claim checks before NodePrepareResources, the kubelet's
// claim checkpoint, NodeUnprepareResources and ResourceSlice wiping behave exactly as on a node.
// Instead of starting containers it resolves the CDI device IDs every container would get and
// writes them, with the merged CDI container edits, to a JSON record per pod. With
// --container-runtime-endpoint it also starts each pod's containers through CRI (runtime.go) with
// those CDI IDs, as the kubelet does, and records what they report. See FAKE-KUBELET.md.
//
// Signatures are pinned to v1.37.2: dra.NewManager lost its reconcilePeriod argument and
// pluginmanager.Run gained a context in recent releases; re-check both on a version bump.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	pluginwatcherapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
	_ "k8s.io/kubernetes/pkg/features" // registers the Kubernetes feature gates that the DRA code reads
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/kubernetes/pkg/kubelet/config"
	"k8s.io/kubernetes/pkg/kubelet/pluginmanager"
)

type options struct {
	kubeconfig      string
	nodeName        string
	registryDir     string
	stateDir        string
	cdiDir          string
	recordsDir      string
	featureGates    string
	reconcilePeriod time.Duration
	strictCDI       bool
	runtimeEndpoint string
	cgroupRoot      string
}

func main() {
	var o options
	klog.InitFlags(nil) // -v, -vmodule, ...; logs go to stderr
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	flag.StringVar(&o.nodeName, "node-name", "", "name of the Node object to create and serve (required)")
	flag.StringVar(&o.registryDir, "registry-dir", "", "plugins_registry dir watched for registration sockets (required)")
	flag.StringVar(&o.stateDir, "state-dir", "", "DRA manager checkpoint dir (required)")
	flag.StringVar(&o.cdiDir, "cdi-dir", "", "dir where plugins write CDI specs (required)")
	flag.StringVar(&o.recordsDir, "records-dir", "", "dir for <namespace>_<pod>.json records and plugins.json (required)")
	flag.StringVar(&o.featureGates, "feature-gates", "", "same string as given to the control plane, e.g. A=true,B=false")
	flag.DurationVar(&o.reconcilePeriod, "reconcile-period", 5*time.Second, "retry interval for a failed prepare or unprepare")
	flag.BoolVar(&o.strictCDI, "strict-cdi-injection", false,
		"fail Prepare when applying the CDI edits to an OCI spec fails (e.g. a device node that does not exist on this host)")
	flag.StringVar(&o.runtimeEndpoint, "container-runtime-endpoint", "",
		"CRI endpoint (unix://...); when set, prepared pods' containers are started there with their CDI devices")
	flag.StringVar(&o.cgroupRoot, "cgroup-root", "fake-kubelet",
		"with --container-runtime-endpoint: pods' cgroup parents are <cgroup-root>/pod<uid>; a relative path nests them below the runtime's own cgroup")
	flag.Parse()

	if err := run(o); err != nil {
		klog.ErrorS(err, "fake-kubelet failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(o options) error {
	for name, value := range map[string]string{
		"--kubeconfig": o.kubeconfig, "--node-name": o.nodeName, "--registry-dir": o.registryDir,
		"--state-dir": o.stateDir, "--cdi-dir": o.cdiDir, "--records-dir": o.recordsDir,
	} {
		if value == "" {
			return fmt.Errorf("%s is required", name)
		}
	}
	for _, dir := range []string{o.registryDir, o.stateDir, o.cdiDir, o.recordsDir} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	// The DRA code checks gates through the global DefaultFeatureGate, exactly as in the kubelet.
	if err := utilfeature.DefaultMutableFeatureGate.Set(o.featureGates); err != nil {
		return fmt.Errorf("--feature-gates: %w", err)
	}

	restConfig, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	restConfig.UserAgent = "fake-kubelet/" + o.nodeName
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}

	// SIGTERM/SIGINT cancel ctx: the plugin manager stops watching and the DRA manager stops its
	// background work (a pending slice wipe is canceled, nothing gets deleted).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := klog.Background().WithValues("node", o.nodeName)
	ctx = klog.NewContext(ctx, logger)

	// The node must exist before the DRA manager starts: its start-up wipe of the node's
	// ResourceSlices looks the node up (and retries while it is missing).
	if err := ensureNode(ctx, client, o.nodeName); err != nil {
		return fmt.Errorf("create node: %w", err)
	}
	go keepNodeReady(ctx, client, o.nodeName)

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: o.nodeName})

	// Only this node's pods, like the kubelet's API source. No periodic resync: failed
	// operations are retried by the pod controller every --reconcile-period.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(options *metav1.ListOptions) {
			options.FieldSelector = "spec.nodeName=" + o.nodeName
		}))
	podInformer := factory.Core().V1().Pods()
	// The DRA manager's reconcile loop (every 60 s, fixed in v1.37.2) unprepares claims of pods
	// that are no longer active, but only once the sources are ready: until the informer has
	// synced, an empty pod list would mean "unprepare everything".
	sourcesReady := config.NewSourcesReady(func(sets.Set[string]) bool {
		return podInformer.Informer().HasSynced()
	})

	records := &recordWriter{dir: o.recordsDir}
	registrations := newRegistrationLog(records)
	// plugins.json marks readiness; one left by a previous run must not.
	if err := os.Remove(registrations.path()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	resolver := newCDIResolver(o.cdiDir, o.strictCDI)

	draManager, err := dra.NewManager(logger, client, o.stateDir)
	if err != nil {
		return fmt.Errorf("DRA manager: %w", err)
	}
	controller := newPodController(client, o.nodeName, draManager, resolver, records, recorder, podInformer, o.reconcilePeriod)
	if o.runtimeEndpoint != "" {
		// Container logs live beside the records, like the kubelet's /var/log/pods.
		controller.runtime, err = newCRIRuntime(ctx, o.runtimeEndpoint, filepath.Join(o.recordsDir, "logs"), o.cgroupRoot)
		if err != nil {
			return err
		}
	}
	getNode := func(ctx context.Context) (*v1.Node, error) {
		return client.CoreV1().Nodes().Get(ctx, o.nodeName, metav1.GetOptions{})
	}
	// Start creates the DRA plugin manager (the registration handler), which immediately
	// deletes all ResourceSlices of this node in the background, as the kubelet does.
	if err := draManager.Start(ctx, controller.activePods, getNode, sourcesReady); err != nil {
		return fmt.Errorf("start DRA manager: %w", err)
	}
	defer draManager.Stop()

	pluginManager := pluginmanager.NewPluginManager(o.registryDir, recorder)
	pluginManager.AddHandler(pluginwatcherapi.DRAPlugin, &loggingHandler{
		PluginHandler: draManager.GetWatcherHandler(),
		log:           registrations,
	})
	pluginManagerDone := make(chan struct{})
	go func() {
		defer close(pluginManagerDone)
		pluginManager.Run(ctx, sourcesReady, ctx.Done())
	}()

	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	// Give the start-up wipe a moment before announcing readiness, so that a plugin started
	// after plugins.json appears normally publishes after the wipe. A plugin must still cope
	// with its slices being deleted (the real kubelet gives no ordering guarantee either).
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	if err := registrations.write(); err != nil {
		return fmt.Errorf("write %s: %w", registrations.path(), err)
	}
	logger.Info("Fake kubelet ready", "registryDir", o.registryDir, "cdiDir", o.cdiDir,
		"recordsDir", o.recordsDir, "stateDir", o.stateDir, "featureGates", o.featureGates)

	controller.run(ctx)

	logger.Info("Shutting down")
	<-pluginManagerDone
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
