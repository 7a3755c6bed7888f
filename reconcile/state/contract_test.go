package state

import (
	"errors"
	"testing"
)

func TestContracts(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		if _, err := s.LastVerifiedContract("web"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no contract yet: %v", err)
		}
		put := func(id int64, server, version, body string) {
			t.Helper()
			if err := s.PutContract(Contract{RevisionID: id, Server: server, Version: version, Contract: []byte(body)}); err != nil {
				t.Fatal(err)
			}
		}
		r1 := mustBegin(t, s, Revision{Server: "web", Version: "1.0.0"})
		mustFinish(t, s, r1, OutcomeVerified)
		put(r1, "web", "1.0.0", `{"tools":["a"]}`)
		// A later revision that failed verification recorded a contract too:
		// it does not count.
		r2 := mustBegin(t, s, Revision{Server: "web", Version: "2.0.0"})
		put(r2, "web", "2.0.0", `{"tools":[]}`)
		mustFinish(t, s, r2, OutcomeRolledBack)
		other := mustBegin(t, s, Revision{Server: "db", Version: "3.0.0"})
		mustFinish(t, s, other, OutcomeVerified)
		put(other, "db", "3.0.0", `{"tools":["q"]}`)
		// Recording again replaces.
		put(r1, "web", "1.0.0", `{"tools":["a"]}`)

		c, err := s.LastVerifiedContract("web")
		if err != nil || c.RevisionID != r1 || c.Version != "1.0.0" || string(c.Contract) != `{"tools":["a"]}` {
			t.Fatalf("last verified contract of web: %+v %v, want revision %d's", c, err, r1)
		}
		all, err := s.LastVerifiedContracts()
		if err != nil || len(all) != 2 || all["web"].RevisionID != r1 || all["db"].RevisionID != other {
			t.Fatalf("last verified contracts: %+v %v", all, err)
		}
		if err := s.PutContract(Contract{Server: "web"}); err == nil {
			t.Fatal("a contract with no revision was accepted")
		}
	})
}

func TestRecentContracts(t *testing.T) {
	s := openStore(t)
	var ids []int64
	for i, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		id := mustBegin(t, s, Revision{Server: "web", Version: v})
		if i == 2 {
			mustFinish(t, s, id, OutcomeRolledBack) // not verified: left out
		} else {
			mustFinish(t, s, id, OutcomeVerified)
		}
		if err := s.PutContract(Contract{RevisionID: id, Server: "web", Version: v, Contract: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	cs, err := s.RecentContracts("web", 5)
	if err != nil || len(cs) != 2 || cs[0].RevisionID != ids[1] || cs[1].RevisionID != ids[0] {
		t.Fatalf("recent contracts: %+v %v, want revisions %d then %d", cs, err, ids[1], ids[0])
	}
	if cs, _ := s.RecentContracts("web", 1); len(cs) != 1 {
		t.Fatalf("limit 1: %d contracts", len(cs))
	}
}
