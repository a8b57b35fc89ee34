package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/kubelet/cm/dra"
	"k8s.io/kubernetes/pkg/kubelet/events"
	"k8s.io/utils/ptr"
)

const workers = 4 // like the kubelet's pod workers, one slow Prepare must not block other pods

// podKey identifies one pod incarnation: a force-deleted pod and its same-named successor are
// different keys, so the old one still gets unprepared.
type podKey struct {
	namespace, name string
	uid             types.UID
}

// podController plays the kubelet's pod lifecycle, with containers only if a runtime is set:
//   - new pod: PrepareResources, GetResources per container, resolve the CDI IDs, (with a
//     runtime: start the sandbox and containers with those CDI IDs), write the record, report
//     the pod Running; with a runtime, the record then follows the containers (state, exit
//     code, the first JSON line of stdout) until none runs;
//   - pod with a deletionTimestamp: (stop and remove containers and sandbox,) UnprepareResources,
//     then delete it with grace period 0;
//   - pod gone from the API (force-deleted): the same on its last known state.
//
// Failures are recorded and retried every retryPeriod.
type podController struct {
	client      kubernetes.Interface
	nodeName    string
	dra         *dra.Manager
	cdi         *cdiResolver
	records     *recordWriter
	recorder    record.EventRecorder
	informer    cache.SharedIndexInformer
	lister      corelisters.PodLister
	queue       workqueue.TypedDelayingInterface[podKey]
	retryPeriod time.Duration
	runtime     *criRuntime // nil: no containers are started (the default)

	mu       sync.Mutex
	prepared sets.Set[types.UID]      // prepared and recorded; only the status is kept up to date
	deleted  sets.Set[types.UID]      // unprepared and deleted by us; the informer may lag behind
	gone     map[types.UID]*v1.Pod    // deleted from the API, unprepare pending
	started  map[types.UID]*podRecord // with a runtime: the last record written of a prepared pod
}

// observePeriod is how often the record of a pod with running containers is refreshed.
const observePeriod = 500 * time.Millisecond

func newPodController(client kubernetes.Interface, nodeName string, draManager *dra.Manager, resolver *cdiResolver,
	records *recordWriter, recorder record.EventRecorder, pods coreinformers.PodInformer, retryPeriod time.Duration) *podController {
	c := &podController{
		client:      client,
		nodeName:    nodeName,
		dra:         draManager,
		cdi:         resolver,
		records:     records,
		recorder:    recorder,
		informer:    pods.Informer(),
		lister:      pods.Lister(),
		queue:       workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[podKey]{Name: "pods"}),
		retryPeriod: retryPeriod,
		prepared:    sets.New[types.UID](),
		deleted:     sets.New[types.UID](),
		gone:        map[types.UID]*v1.Pod{},
		started:     map[types.UID]*podRecord{},
	}
	_, _ = c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueue(obj) },
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			pod, ok := obj.(*v1.Pod)
			if !ok {
				return
			}
			c.mu.Lock()
			c.gone[pod.UID] = pod
			c.mu.Unlock()
			c.enqueue(pod)
		},
	})
	return c
}

func (c *podController) enqueue(obj any) {
	if pod, ok := obj.(*v1.Pod); ok {
		c.queue.Add(podKey{namespace: pod.Namespace, name: pod.Name, uid: pod.UID})
	}
}

// activePods is the DRA manager's view of which pods still need their claims: everything on
// this node that is not in a terminal phase, terminating pods included (they are unprepared by
// us, before their deletion). Pods that vanished from the API are not active, so the manager's
// reconcile loop unprepares them even if our own attempt failed.
func (c *podController) activePods() []*v1.Pod {
	pods, err := c.lister.List(labels.Everything())
	if err != nil {
		return nil
	}
	active := make([]*v1.Pod, 0, len(pods))
	for _, pod := range pods {
		if pod.Status.Phase != v1.PodSucceeded && pod.Status.Phase != v1.PodFailed {
			active = append(active, pod)
		}
	}
	return active
}

// run processes pods until ctx is canceled.
func (c *podController) run(ctx context.Context) {
	// Health updates from the plugins' NodeWatchResources streams: refresh the
	// allocatedResourcesStatus of the affected pods, as the kubelet's status manager does.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case update := <-c.dra.Updates():
				c.enqueueUIDs(update.PodUIDs)
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
}

func (c *podController) enqueueUIDs(uids []string) {
	wanted := sets.New(uids...)
	pods, _ := c.lister.List(labels.Everything())
	for _, pod := range pods {
		if wanted.Has(string(pod.UID)) {
			c.enqueue(pod)
		}
	}
}

func (c *podController) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			c.queue.AddAfter(key, c.retryPeriod)
		}
	}
	return true
}

func (c *podController) sync(ctx context.Context, key podKey) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "pod", klog.KRef(key.namespace, key.name), "podUID", key.uid)
	ctx = klog.NewContext(ctx, logger)
	pod, err := c.lister.Pods(key.namespace).Get(key.name)
	switch {
	case err == nil && pod.UID == key.uid:
	case err == nil || apierrors.IsNotFound(err):
		return c.syncGone(ctx, key)
	default:
		return err
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return c.terminate(ctx, pod)
	case pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed:
		return nil // never happens with our pods; the DRA reconcile loop would unprepare them
	case c.isPrepared(pod.UID):
		// e.g. a health update changed allocatedResourcesStatus, or containers to observe
		if err := c.setRunning(ctx, pod); err != nil {
			return err
		}
		return c.observe(ctx, pod)
	default:
		return c.prepare(ctx, pod)
	}
}

func (c *podController) isPrepared(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.prepared.Has(uid)
}

// prepare mirrors what the kubelet does before starting a pod's containers.
func (c *podController) prepare(ctx context.Context, pod *v1.Pod) error {
	logger := klog.FromContext(ctx)
	containers, err := c.prepareAndResolve(ctx, pod)
	if err != nil {
		logger.Error(err, "Prepare failed, will retry", "retryPeriod", c.retryPeriod)
		c.recorder.Eventf(pod, v1.EventTypeWarning, events.FailedPrepareDynamicResources, "Failed to prepare dynamic resources: %v", err)
		if werr := c.writeRecord(pod, nil, err); werr != nil {
			logger.Error(werr, "Writing record failed")
		}
		return err
	}
	var sandboxID string
	if c.runtime != nil {
		if sandboxID, err = c.startContainers(ctx, pod, containers); err != nil {
			logger.Error(err, "Starting containers failed, will retry", "retryPeriod", c.retryPeriod)
			c.recorder.Eventf(pod, v1.EventTypeWarning, events.FailedToCreateContainer, "Error: %v", err)
			if werr := c.writeRecord(pod, nil, err); werr != nil {
				logger.Error(werr, "Writing record failed")
			}
			return err
		}
	}
	record := &podRecord{Pod: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID), Containers: containers, SandboxID: sandboxID}
	if err := c.records.writePod(record); err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	if err := c.setRunning(ctx, pod); err != nil {
		return err
	}
	c.mu.Lock()
	c.prepared.Insert(pod.UID)
	if c.runtime != nil {
		c.started[pod.UID] = record
		c.queue.AddAfter(podKey{namespace: pod.Namespace, name: pod.Name, uid: pod.UID}, observePeriod)
	}
	c.mu.Unlock()
	cdiDevices := map[string][]string{}
	for name, container := range containers {
		cdiDevices[name] = container.CDIDevices
	}
	logger.Info("Prepared pod", "cdiDevices", cdiDevices)
	return nil
}

func (c *podController) prepareAndResolve(ctx context.Context, pod *v1.Pod) (map[string]containerRecord, error) {
	if err := c.dra.PrepareResources(ctx, pod); err != nil {
		return nil, err
	}
	containers := map[string]containerRecord{}
	var all []v1.Container
	all = append(all, pod.Spec.InitContainers...)
	all = append(all, pod.Spec.Containers...)
	for i := range all {
		container := &all[i]
		info, err := c.dra.GetResources(pod, container)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", container.Name, err)
		}
		ids := make([]string, 0, len(info.CDIDevices))
		for _, device := range info.CDIDevices {
			ids = append(ids, device.Name)
		}
		record, err := c.cdi.resolve(ids)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", container.Name, err)
		}
		containers[container.Name] = record
	}
	return containers, nil
}

// terminate mirrors the kubelet's handling of a deleted pod: containers are gone (we never had
// any), so unprepare, then remove the pod from the API.
func (c *podController) terminate(ctx context.Context, pod *v1.Pod) error {
	logger := klog.FromContext(ctx)
	if c.isDeleted(pod.UID) {
		return nil // updates of our own grace-period-0 delete, before the delete event
	}
	if err := c.stopContainers(ctx, pod); err != nil {
		return err
	}
	if err := c.dra.UnprepareResources(ctx, pod); err != nil {
		logger.Error(err, "Unprepare failed, will retry", "retryPeriod", c.retryPeriod)
		if werr := c.writeRecord(pod, nil, err); werr != nil {
			logger.Error(werr, "Writing record failed")
		}
		return err
	}
	logger.Info("Unprepared pod")
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod: %w", err)
	}
	c.mu.Lock()
	c.prepared.Delete(pod.UID)
	c.deleted.Insert(pod.UID)
	delete(c.started, pod.UID)
	c.mu.Unlock()
	return c.records.removePod(pod.Namespace, pod.Name, string(pod.UID))
}

// syncGone unprepares a pod that disappeared from the API without passing through terminate,
// e.g. one force-deleted (grace period 0) by someone else.
func (c *podController) syncGone(ctx context.Context, key podKey) error {
	c.mu.Lock()
	pod := c.gone[key.uid]
	c.mu.Unlock()
	if pod == nil {
		return nil
	}
	if c.isDeleted(pod.UID) {
		c.forget(pod) // the delete event of our own delete: already unprepared
		return nil
	}
	logger := klog.FromContext(ctx)
	if err := c.stopContainers(ctx, pod); err != nil {
		return err
	}
	if err := c.dra.UnprepareResources(ctx, pod); err != nil {
		logger.Error(err, "Unprepare of deleted pod failed, will retry", "retryPeriod", c.retryPeriod)
		if werr := c.writeRecord(pod, nil, err); werr != nil {
			logger.Error(werr, "Writing record failed")
		}
		return err
	}
	logger.Info("Unprepared deleted pod")
	c.forget(pod)
	return c.records.removePod(pod.Namespace, pod.Name, string(pod.UID))
}

func (c *podController) isDeleted(uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleted.Has(uid)
}

func (c *podController) forget(pod *v1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepared.Delete(pod.UID)
	c.deleted.Delete(pod.UID)
	delete(c.gone, pod.UID)
	delete(c.started, pod.UID)
}

func (c *podController) writeRecord(pod *v1.Pod, containers map[string]containerRecord, err error) error {
	record := &podRecord{Pod: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID), Containers: containers}
	if err != nil {
		record.Error = err.Error()
	}
	return c.records.writePod(record)
}

// setRunning reports the pod as the kubelet would once all containers run. Existing timestamps
// are kept, so an unchanged status is not written again.
func (c *podController) setRunning(ctx context.Context, pod *v1.Pod) error {
	now := metav1.Now()
	status := pod.Status.DeepCopy()
	status.Phase = v1.PodRunning
	status.HostIP = "127.0.0.1"
	status.HostIPs = []v1.HostIP{{IP: "127.0.0.1"}}
	if status.StartTime == nil {
		status.StartTime = &now
	}
	for _, conditionType := range []v1.PodConditionType{v1.PodScheduled, v1.PodInitialized, v1.ContainersReady, v1.PodReady} {
		setCondition(status, conditionType, now)
	}
	status.InitContainerStatuses = containerStatuses(pod.Spec.InitContainers, status.InitContainerStatuses, pod.UID, now, true)
	status.ContainerStatuses = containerStatuses(pod.Spec.Containers, status.ContainerStatuses, pod.UID, now, false)
	if utilfeature.DefaultFeatureGate.Enabled(features.ResourceHealthStatus) {
		c.dra.UpdateAllocatedResourcesStatus(klog.FromContext(ctx), pod, status)
	}
	if apiequality.Semantic.DeepEqual(&pod.Status, status) {
		return nil
	}
	updated := pod.DeepCopy()
	updated.Status = *status
	_, err := c.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// The informer will deliver the newer pod and we try again with it.
		return errors.New("pod changed while updating its status")
	}
	return err
}

func setCondition(status *v1.PodStatus, conditionType v1.PodConditionType, now metav1.Time) {
	for i := range status.Conditions {
		condition := &status.Conditions[i]
		if condition.Type != conditionType {
			continue
		}
		if condition.Status != v1.ConditionTrue {
			*condition = v1.PodCondition{Type: conditionType, Status: v1.ConditionTrue, LastTransitionTime: now}
		}
		return
	}
	status.Conditions = append(status.Conditions, v1.PodCondition{Type: conditionType, Status: v1.ConditionTrue, LastTransitionTime: now})
}

// containerStatuses returns running (init containers: completed) statuses, keeping the fields
// of existing entries such as the health the DRA manager fills in afterwards.
func containerStatuses(containers []v1.Container, existing []v1.ContainerStatus, podUID types.UID, now metav1.Time, init bool) []v1.ContainerStatus {
	byName := map[string]v1.ContainerStatus{}
	for _, status := range existing {
		byName[status.Name] = status
	}
	statuses := make([]v1.ContainerStatus, 0, len(containers))
	for _, container := range containers {
		status, ok := byName[container.Name]
		if !ok {
			status = v1.ContainerStatus{
				Name:        container.Name,
				Image:       container.Image,
				ImageID:     "fake-kubelet://" + container.Image,
				ContainerID: fmt.Sprintf("fake-kubelet://%s-%s", podUID, container.Name),
			}
		}
		started := !init
		status.Started = &started
		status.Ready = !init
		if init {
			if status.State.Terminated == nil {
				status.State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
					ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: status.ContainerID,
				}}
			}
		} else if status.State.Running == nil {
			status.State = v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}}
		}
		statuses = append(statuses, status)
	}
	return statuses
}

// startContainers runs the pod's sandbox and containers with the CDI IDs of their records and
// adds what the runtime reports to the records. It returns the sandbox ID.
func (c *podController) startContainers(ctx context.Context, pod *v1.Pod, containers map[string]containerRecord) (string, error) {
	cdiDevices := map[string][]string{}
	for name, container := range containers {
		cdiDevices[name] = container.CDIDevices
	}
	sandboxID, err := c.runtime.startPod(ctx, pod, cdiDevices)
	if err != nil {
		return sandboxID, fmt.Errorf("start containers: %w", err)
	}
	if _, err := c.observeInto(ctx, pod, containers); err != nil {
		return sandboxID, fmt.Errorf("start containers: %w", err)
	}
	return sandboxID, nil
}

// observe refreshes the record of a prepared pod from the runtime: container states, exit codes
// and the first JSON line each container printed. It polls while any container runs.
func (c *podController) observe(ctx context.Context, pod *v1.Pod) error {
	c.mu.Lock()
	last := c.started[pod.UID]
	c.mu.Unlock()
	if c.runtime == nil || last == nil {
		return nil
	}
	containers := make(map[string]containerRecord, len(last.Containers))
	for name, container := range last.Containers {
		containers[name] = container
	}
	running, err := c.observeInto(ctx, pod, containers)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(containers, last.Containers) {
		record := *last
		record.Containers = containers
		if err := c.records.writePod(&record); err != nil {
			return err
		}
		c.mu.Lock()
		if c.started[pod.UID] == last {
			c.started[pod.UID] = &record
		}
		c.mu.Unlock()
	}
	if running {
		c.queue.AddAfter(podKey{namespace: pod.Namespace, name: pod.Name, uid: pod.UID}, observePeriod)
	}
	return nil
}

// observeInto updates the records' runtime fields; whether a container still runs.
func (c *podController) observeInto(ctx context.Context, pod *v1.Pod, containers map[string]containerRecord) (bool, error) {
	views, err := c.runtime.containers(ctx, pod)
	if err != nil {
		return false, err
	}
	running := false
	for name, view := range views {
		record, ok := containers[name]
		if !ok {
			continue
		}
		record.ContainerID, record.State, record.ExitCode, record.LogPath = view.id, view.state, view.exitCode, view.logPath
		if record.Seen == nil {
			// Read after the state: a container reported exited has its whole log written.
			if record.Seen, err = firstJSONObject(view.logPath); err != nil {
				return false, err
			}
		}
		running = running || view.state != "exited"
		containers[name] = record
	}
	return running, nil
}

// stopContainers tears down the pod's containers and sandbox before its claims are unprepared,
// the kubelet's order. Failures are recorded and retried.
func (c *podController) stopContainers(ctx context.Context, pod *v1.Pod) error {
	if c.runtime == nil {
		return nil
	}
	if err := c.runtime.stopPod(ctx, pod); err != nil {
		err = fmt.Errorf("stop containers: %w", err)
		klog.FromContext(ctx).Error(err, "Stopping containers failed, will retry", "retryPeriod", c.retryPeriod)
		if werr := c.writeRecord(pod, nil, err); werr != nil {
			klog.FromContext(ctx).Error(werr, "Writing record failed")
		}
		return err
	}
	return nil
}
