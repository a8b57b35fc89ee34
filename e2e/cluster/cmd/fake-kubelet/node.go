package main

import (
	"context"
	"runtime"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
)

const (
	hostnameLabel = "kubernetes.io/hostname"
	// No node-lifecycle controller runs, so nothing needs a frequent heartbeat; the periodic
	// update only repairs a Ready condition that someone else changed.
	nodeStatusPeriod = 10 * time.Second
)

// Room for many pods: scheduling is about devices, not cpu or memory.
var allocatable = v1.ResourceList{
	v1.ResourceCPU:    resource.MustParse("64"),
	v1.ResourceMemory: resource.MustParse("512Gi"),
	v1.ResourcePods:   resource.MustParse("250"),
}

// ensureNode creates the Node (or adopts an existing one) and sets its status Ready.
func ensureNode(ctx context.Context, client kubernetes.Interface, name string) error {
	logger := klog.FromContext(ctx)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node = &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
			node.Labels = nodeLabels(name, nil)
			_, err = client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
			if err == nil {
				logger.Info("Created node")
			}
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(v1.Resource("nodes"), name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		node.Labels = nodeLabels(name, node.Labels)
		node.Spec.Taints = withoutNotReadyTaints(node.Spec.Taints)
		_, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		if err == nil {
			logger.Info("Adopted existing node")
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := updateNodeStatus(ctx, client, name); err != nil {
		return err
	}
	// The TaintNodesByCondition admission plugin (if enabled) adds a not-ready taint on
	// create, which the (absent) node-lifecycle controller would lift once the node is Ready.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		taints := withoutNotReadyTaints(node.Spec.Taints)
		if len(taints) == len(node.Spec.Taints) {
			return nil
		}
		node.Spec.Taints = taints
		_, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

func nodeLabels(name string, labels map[string]string) map[string]string {
	if labels == nil {
		labels = map[string]string{}
	}
	labels[hostnameLabel] = name
	labels["kubernetes.io/os"] = "linux"
	return labels
}

func withoutNotReadyTaints(taints []v1.Taint) []v1.Taint {
	var kept []v1.Taint
	for _, taint := range taints {
		if taint.Key == v1.TaintNodeNotReady || taint.Key == v1.TaintNodeUnreachable {
			continue
		}
		kept = append(kept, taint)
	}
	return kept
}

// keepNodeReady refreshes the node status until ctx is canceled.
func keepNodeReady(ctx context.Context, client kubernetes.Interface, name string) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := updateNodeStatus(ctx, client, name); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Updating node status failed, will retry")
		}
	}, nodeStatusPeriod)
}

func updateNodeStatus(ctx context.Context, client kubernetes.Interface, name string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		status := &node.Status
		status.Capacity = allocatable.DeepCopy()
		status.Allocatable = allocatable.DeepCopy()
		status.Addresses = []v1.NodeAddress{
			{Type: v1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: v1.NodeHostName, Address: name},
		}
		status.NodeInfo.KubeletVersion = version.Get().GitVersion
		status.NodeInfo.OperatingSystem = runtime.GOOS
		status.NodeInfo.Architecture = runtime.GOARCH
		ready := v1.NodeCondition{
			Type:              v1.NodeReady,
			Status:            v1.ConditionTrue,
			Reason:            "KubeletReady",
			Message:           "fake kubelet is posting ready status",
			LastHeartbeatTime: now,
		}
		found := false
		for i := range status.Conditions {
			if status.Conditions[i].Type != v1.NodeReady {
				continue
			}
			found = true
			ready.LastTransitionTime = status.Conditions[i].LastTransitionTime
			if status.Conditions[i].Status != v1.ConditionTrue {
				ready.LastTransitionTime = now
			}
			status.Conditions[i] = ready
		}
		if !found {
			ready.LastTransitionTime = now
			status.Conditions = append(status.Conditions, ready)
		}
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}
