//go:build tools

// Package tools pins the Kubernetes control-plane commands built by
// hack/k8s-cluster.sh (go build -o ... k8s.io/kubernetes/cmd/NAME).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
