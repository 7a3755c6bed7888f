//go:build tools

// Package tools pins etcd's server command, built by hack/k8s-cluster.sh
// (go build -o ... go.etcd.io/etcd/server/v3).
package tools

import _ "go.etcd.io/etcd/server/v3"
