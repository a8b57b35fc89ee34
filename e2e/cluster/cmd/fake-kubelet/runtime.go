package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
)

// The kubelet's labels on sandboxes and containers (pkg/kubelet/types/labels.go).
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
)

// criRuntime starts a pod's containers through a CRI runtime (containerd) after the DRA manager
// prepared its claims, the way the kubelet's kuberuntime manager does, reduced to what the e2e
// tests need:
//   - one sandbox per pod, always in the node's network namespace (there is no CNI here, as with
//     hostNetwork: true), its cgroup parent <cgroupRoot>/pod<uid>;
//   - per container: image, command, args, env (plain values), working dir, runAsUser/Group, a
//     log under <logRoot>/<namespace>_<pod>_<uid>/<container>/0.log, and ContainerConfig.CDIDevices
//     set to the IDs the DRA manager returned, exactly as the kubelet sets them;
//   - init containers run to completion, in order, before the regular ones; no restarts, probes,
//     volumes or resources.
//
// Sandboxes and containers are found again by their labels, so a restarted fake kubelet picks up
// the pods its predecessor started, and every step may be retried.
type criRuntime struct {
	service    internalapi.RuntimeService
	logRoot    string
	cgroupRoot string
}

// criTimeout bounds each CRI call, like the kubelet's --runtime-request-timeout default.
const criTimeout = 2 * time.Minute

func newCRIRuntime(ctx context.Context, endpoint, logRoot, cgroupRoot string) (*criRuntime, error) {
	service, err := remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(endpoint).
		WithConnectionTimeout(criTimeout).
		WithTracerProvider(nil).
		Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to the container runtime at %s: %w", endpoint, err)
	}
	if err := os.MkdirAll(logRoot, 0o755); err != nil {
		return nil, err
	}
	return &criRuntime{service: service, logRoot: logRoot, cgroupRoot: cgroupRoot}, nil
}

func (r *criRuntime) podLogDir(pod *v1.Pod) string {
	return filepath.Join(r.logRoot, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

func (r *criRuntime) podCgroup(pod *v1.Pod) string {
	return filepath.Join(r.cgroupRoot, "pod"+string(pod.UID))
}

// startPod runs the pod's sandbox and containers (those already there are kept); cdiDevices
// holds each container's CDI IDs. It returns the sandbox ID.
func (r *criRuntime) startPod(ctx context.Context, pod *v1.Pod, cdiDevices map[string][]string) (string, error) {
	sandboxConfig := r.sandboxConfig(pod)
	sandboxID, err := r.ensureSandbox(ctx, pod, sandboxConfig)
	if err != nil {
		return "", fmt.Errorf("run pod sandbox: %w", err)
	}
	for i := range pod.Spec.InitContainers {
		container := &pod.Spec.InitContainers[i]
		id, err := r.ensureContainer(ctx, pod, sandboxID, sandboxConfig, container, cdiDevices[container.Name])
		if err != nil {
			return sandboxID, fmt.Errorf("init container %s: %w", container.Name, err)
		}
		if err := r.waitExitedZero(ctx, id); err != nil {
			return sandboxID, fmt.Errorf("init container %s: %w", container.Name, err)
		}
	}
	for i := range pod.Spec.Containers {
		container := &pod.Spec.Containers[i]
		if _, err := r.ensureContainer(ctx, pod, sandboxID, sandboxConfig, container, cdiDevices[container.Name]); err != nil {
			return sandboxID, fmt.Errorf("container %s: %w", container.Name, err)
		}
	}
	return sandboxID, nil
}

func (r *criRuntime) sandboxConfig(pod *v1.Pod) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for k, v := range pod.Labels {
		labels[k] = v
	}
	labels[labelPodName], labels[labelPodNamespace], labels[labelPodUID] = pod.Name, pod.Namespace, string(pod.UID)
	// No Hostname: a pod in the node's network namespace keeps the node's (the kubelet sets
	// none for hostNetwork pods; runc refuses one without a UTS namespace).
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID)},
		LogDirectory: r.podLogDir(pod),
		Labels:       labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: r.podCgroup(pod),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(pod),
			},
		},
	}
}

// namespaceOptions: the node's network always (no CNI); PID and IPC as the pod asks.
func namespaceOptions(pod *v1.Pod) *runtimeapi.NamespaceOption {
	options := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_NODE,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostPID {
		options.Pid = runtimeapi.NamespaceMode_NODE
	} else if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		options.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		options.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return options
}

func (r *criRuntime) ensureSandbox(ctx context.Context, pod *v1.Pod, config *runtimeapi.PodSandboxConfig) (string, error) {
	sandboxes, err := r.sandboxes(ctx, pod.UID)
	if err != nil {
		return "", err
	}
	for _, sandbox := range sandboxes {
		if sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			return sandbox.Id, nil
		}
	}
	config.Metadata.Attempt = uint32(len(sandboxes))
	if err := os.MkdirAll(config.LogDirectory, 0o755); err != nil {
		return "", err
	}
	id, err := r.service.RunPodSandbox(ctx, config, "")
	if err == nil {
		klog.FromContext(ctx).Info("Started pod sandbox", "sandboxID", id, "cgroupParent", config.Linux.CgroupParent)
	}
	return id, err
}

func (r *criRuntime) sandboxes(ctx context.Context, uid types.UID) ([]*runtimeapi.PodSandbox, error) {
	return r.service.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{labelPodUID: string(uid)},
	})
}

// ensureContainer creates and starts the container unless the sandbox has it already.
func (r *criRuntime) ensureContainer(ctx context.Context, pod *v1.Pod, sandboxID string,
	sandboxConfig *runtimeapi.PodSandboxConfig, container *v1.Container, cdiDevices []string) (string, error) {
	existing, err := r.service.ListContainers(ctx, &runtimeapi.ContainerFilter{
		PodSandboxId:  sandboxID,
		LabelSelector: map[string]string{labelContainerName: container.Name},
	})
	if err != nil {
		return "", err
	}
	for _, c := range existing {
		if c.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			return c.Id, nil
		}
		return c.Id, r.service.StartContainer(ctx, c.Id)
	}
	id, err := r.service.CreateContainer(ctx, sandboxID, containerConfig(pod, container, cdiDevices), sandboxConfig)
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	if err := r.service.StartContainer(ctx, id); err != nil {
		return id, fmt.Errorf("start: %w", err)
	}
	klog.FromContext(ctx).Info("Started container", "container", container.Name, "containerID", id, "cdiDevices", cdiDevices)
	return id, nil
}

func containerConfig(pod *v1.Pod, container *v1.Container, cdiDevices []string) *runtimeapi.ContainerConfig {
	envs := make([]*runtimeapi.KeyValue, 0, len(container.Env))
	for _, env := range container.Env {
		if env.ValueFrom == nil {
			envs = append(envs, &runtimeapi.KeyValue{Key: env.Name, Value: []byte(env.Value)})
		}
	}
	devices := make([]*runtimeapi.CDIDevice, 0, len(cdiDevices))
	for _, id := range cdiDevices {
		devices = append(devices, &runtimeapi.CDIDevice{Name: id})
	}
	security := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if ctx := pod.Spec.SecurityContext; ctx != nil {
		security.RunAsUser = int64Value(ctx.RunAsUser)
		security.RunAsGroup = int64Value(ctx.RunAsGroup)
	}
	if ctx := container.SecurityContext; ctx != nil {
		if ctx.RunAsUser != nil {
			security.RunAsUser = int64Value(ctx.RunAsUser)
		}
		if ctx.RunAsGroup != nil {
			security.RunAsGroup = int64Value(ctx.RunAsGroup)
		}
	}
	return &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: container.Name},
		Image:      &runtimeapi.ImageSpec{Image: container.Image, UserSpecifiedImage: container.Image},
		Command:    container.Command,
		Args:       container.Args,
		WorkingDir: container.WorkingDir,
		Envs:       envs,
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID),
			labelContainerName: container.Name,
		},
		LogPath:    filepath.Join(container.Name, "0.log"),
		CDIDevices: devices,
		Linux:      &runtimeapi.LinuxContainerConfig{SecurityContext: security},
	}
}

func int64Value(v *int64) *runtimeapi.Int64Value {
	if v == nil {
		return nil
	}
	return &runtimeapi.Int64Value{Value: *v}
}

// waitExitedZero waits for an init container to finish; it must exit with 0.
func (r *criRuntime) waitExitedZero(ctx context.Context, id string) error {
	deadline := time.Now().Add(criTimeout)
	for time.Now().Before(deadline) {
		response, err := r.service.ContainerStatus(ctx, id, false)
		if err != nil {
			return err
		}
		if s := response.GetStatus(); s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			if s.ExitCode != 0 {
				return fmt.Errorf("exited with code %d (%s)", s.ExitCode, s.Reason)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("still running after %v", criTimeout)
}

// containerView is what the record shows of a running or finished container.
type containerView struct {
	id       string
	state    string
	exitCode *int32
	logPath  string
}

// containers returns the pod's containers by name (the newest attempt of each).
func (r *criRuntime) containers(ctx context.Context, pod *v1.Pod) (map[string]containerView, error) {
	list, err := r.service.ListContainers(ctx, &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{labelPodUID: string(pod.UID)},
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].CreatedAt < list[j].CreatedAt })
	views := map[string]containerView{}
	for _, c := range list {
		name := c.GetMetadata().GetName()
		view := containerView{id: c.Id, state: stateName(c.State)}
		view.logPath = filepath.Join(r.podLogDir(pod), name, "0.log")
		if c.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			response, err := r.service.ContainerStatus(ctx, c.Id, false)
			if err != nil {
				return nil, err
			}
			code := response.GetStatus().GetExitCode()
			view.exitCode = &code
		}
		views[name] = view
	}
	return views, nil
}

func stateName(state runtimeapi.ContainerState) string {
	switch state {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return "created"
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return "running"
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return "exited"
	default:
		return "unknown"
	}
}

// stopPod tears the pod down in the kubelet's order: stop and remove every container, stop and
// remove the sandbox; then the pod's cgroup and logs go. Missing pieces are fine (retries).
func (r *criRuntime) stopPod(ctx context.Context, pod *v1.Pod) error {
	grace := int64(30)
	if pod.DeletionGracePeriodSeconds != nil {
		grace = *pod.DeletionGracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	sandboxes, err := r.sandboxes(ctx, pod.UID)
	if err != nil {
		return err
	}
	containers, err := r.service.ListContainers(ctx, &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{labelPodUID: string(pod.UID)},
	})
	if err != nil {
		return err
	}
	for _, c := range containers {
		if err := ignoreNotFound(r.service.StopContainer(ctx, c.Id, grace)); err != nil {
			return fmt.Errorf("stop container %s: %w", c.GetMetadata().GetName(), err)
		}
		if err := ignoreNotFound(r.service.RemoveContainer(ctx, c.Id)); err != nil {
			return fmt.Errorf("remove container %s: %w", c.GetMetadata().GetName(), err)
		}
	}
	for _, sandbox := range sandboxes {
		if err := ignoreNotFound(r.service.StopPodSandbox(ctx, sandbox.Id)); err != nil {
			return fmt.Errorf("stop pod sandbox: %w", err)
		}
		if err := ignoreNotFound(r.service.RemovePodSandbox(ctx, sandbox.Id)); err != nil {
			return fmt.Errorf("remove pod sandbox: %w", err)
		}
	}
	if err := removeCgroup(r.podCgroup(pod)); err != nil {
		return fmt.Errorf("remove pod cgroup: %w", err)
	}
	if len(sandboxes)+len(containers) > 0 {
		klog.FromContext(ctx).Info("Stopped pod", "containers", len(containers), "sandboxes", len(sandboxes))
	}
	return os.RemoveAll(r.podLogDir(pod))
}

func ignoreNotFound(err error) error {
	if err == nil || status.Code(errors.Unwrap(err)) == codes.NotFound || status.Code(err) == codes.NotFound {
		return nil
	}
	return err
}
