package null

import (
	"context"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/providertest"
	"github.com/tendhq/tend/spec"
)

// TestConformance runs the provider conformance suite on the null
// provider's files, without the subtests that need a workload (Drift,
// Kill) or a capability it does not have (Execer, Statser, DataCopier,
// Restore).
func TestConformance(t *testing.T) {
	dir := t.TempDir()
	p := newTestProvider(t, dir, "conformance")
	server := func(name, version string, replicas int) *spec.Server {
		return &spec.Server{
			Name: name, Provider: "null.conformance", ProviderType: Type, Version: version, Replicas: replicas,
			Image: "registry.example.com/" + name + ":" + version,
			Ports: []spec.Port{{Name: "http", Number: 8000, Protocol: "tcp"}},
		}
	}
	providertest.Run(t, providertest.Harness{
		Provider:   p,
		ManagedBy:  "conformance",
		Server:     server,
		NoWorkload: true,
		// Another tend that shares the state directory: its record must
		// outlive the suite, which stops everything its own identity owns.
		Foreign: func(t *testing.T) (func() bool, func()) {
			other := newTestProvider(t, dir, "conformance")
			d := &providers.Desired{Server: server("foreign", "1.0.0", 1), SpecHash: "foreign", Revision: "r", ManagedBy: "someone-else"}
			inst := other.StartReplica(context.Background(), providers.StartRequest{Desired: d})
			if inst.Err != nil {
				t.Fatal(inst.Err)
			}
			alive := func() bool {
				res := other.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "someone-else"})
				return res.Err == nil && len(res.Instances) == 1 && res.Instances[0].ID == inst.Instance.ID
			}
			cleanup := func() { other.StopReplica(context.Background(), providers.StopRequest{Instance: inst.Instance}) }
			return alive, cleanup
		},
	})
}
