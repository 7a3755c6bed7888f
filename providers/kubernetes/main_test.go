package kubernetes_test

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// kwok v0.8.0 lists and watches with client-go's streaming lists
	// (WatchListClient), which this control plane cannot serve (its etcd
	// lacks RequestWatchProgress): after its first watch ends, about a
	// minute in, kwok sees no new pod, and they stay Pending. kubetest
	// starts kwok with this process's environment, so this turns the
	// feature off for it. To be removed once kubetest does it.
	if _, ok := os.LookupEnv("KUBE_FEATURE_WatchListClient"); !ok {
		os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	}
	os.Exit(m.Run())
}
