package contract

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// capabilityServer is an MCP server with the tool "search" for every
// client and, unless withoutAsk, the tool "ask" only for clients that
// declare sampling, as servers whose tool samples the client's model do.
// It records the capabilities each client declared in seen.
func capabilityServer(withoutAsk bool, seen *[]*mcp.ClientCapabilities) *mcp.Server {
	s := testServer(true)
	if withoutAsk {
		return s
	}
	mcp.AddTool(s, &mcp.Tool{Name: "ask", Description: "Asks your model."},
		func(context.Context, *mcp.CallToolRequest, empty) (*mcp.CallToolResult, any, error) {
			return nil, nil, nil
		})
	sampling := func(ss *mcp.ServerSession) bool {
		p := ss.InitializeParams()
		//lint:ignore SA1019 the test is about sampling
		return p != nil && p.Capabilities != nil && p.Capabilities.Sampling != nil
	}
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			lr, ok := req.(*mcp.ListToolsRequest)
			if !ok || err != nil {
				return res, err
			}
			if seen != nil {
				*seen = append(*seen, lr.Session.InitializeParams().Capabilities)
			}
			if tl, ok := res.(*mcp.ListToolsResult); ok && !sampling(lr.Session) {
				out := *tl
				out.Tools = slices.DeleteFunc(slices.Clone(tl.Tools), func(t *mcp.Tool) bool { return t.Name == "ask" })
				return &out, nil
			}
			return res, err
		}
	})
	return s
}

// declaredText says which capabilities a server saw a client declare:
// "elicitation roots(listChanged) sampling".
func declaredText(c *mcp.ClientCapabilities) string {
	var out []string
	if c.Elicitation != nil {
		out = append(out, "elicitation")
	}
	//lint:ignore SA1019 the test is about roots
	if r := c.RootsV2; r != nil {
		out = append(out, map[bool]string{false: "roots", true: "roots(listChanged)"}[r.ListChanged])
	}
	//lint:ignore SA1019 the test is about sampling
	if c.Sampling != nil {
		out = append(out, "sampling")
	}
	return strings.Join(out, " ")
}

func toolNames(c *Contract) string {
	var names []string
	for _, t := range c.Tools {
		names = append(names, t.Name)
	}
	return strings.Join(names, " ")
}

func TestFetchDeclaresClientCapabilities(t *testing.T) {
	t.Parallel()
	var seen []*mcp.ClientCapabilities
	base := serve(t, capabilityServer(false, &seen))
	for _, tc := range []struct {
		name     string
		caps     []string
		recorded string // JSON of Contract.ClientCapabilities
		tools    string
		declared string // what the server saw (declaredText)
	}{
		{"Default", nil, `["roots"]`, "search", "roots(listChanged)"},
		{"None", []string{}, `[]`, "search", ""},
		{"Sampling", []string{"sampling"}, `["sampling"]`, "ask search", "sampling"},
		{"All", []string{"sampling", "roots", "elicitation", "sampling"}, `["elicitation","roots","sampling"]`, "ask search",
			"elicitation roots(listChanged) sampling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fetch(t, FetchOptions{URL: base + "/mcp", ClientCapabilities: tc.caps})
			if got := toolNames(c); got != tc.tools {
				t.Errorf("tools = %s, want %s", got, tc.tools)
			}
			if b, _ := json.Marshal(c.ClientCapabilities); string(b) != tc.recorded {
				t.Errorf("recorded capabilities = %s, want %s", b, tc.recorded)
			}
			if len(seen) == 0 {
				t.Fatal("the server saw no tools/list")
			}
			if got := declaredText(seen[len(seen)-1]); got != tc.declared {
				t.Errorf("the server saw the capabilities %s, want %s", got, tc.declared)
			}
		})
	}
	t.Run("Unknown", func(t *testing.T) {
		_, err := Fetch(t.Context(), FetchOptions{URL: base + "/mcp", ClientCapabilities: []string{"sampling", "telepathy"}})
		if want := `unknown client capability "telepathy"; want one of elicitation, roots, sampling`; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
}

// TestCompareUnderCapabilities is the regression test of issue 15 item 12:
// a tool offered only to clients that declare sampling, removed in the
// next version. Declaring sampling, the contract check sees the removal;
// without it, the tool is invisible in both versions, so its removal is
// too (the blind spot that contract_capabilities closes).
func TestCompareUnderCapabilities(t *testing.T) {
	t.Parallel()
	v1 := serve(t, capabilityServer(false, nil))
	v2 := serve(t, capabilityServer(true, nil)) // "ask" removed

	t.Run("Declared", func(t *testing.T) {
		t.Parallel()
		caps := []string{CapabilitySampling}
		d := Compare(fetch(t, FetchOptions{URL: v1 + "/mcp", ClientCapabilities: caps}), fetch(t, FetchOptions{URL: v2 + "/mcp", ClientCapabilities: caps}))
		checkDiff(t, d, []string{`tool-removed : tool "ask" was removed`}, nil)
		if d.Capabilities != nil || len(d.Unjudged) != 0 {
			t.Errorf("capabilities changed: %+v", d)
		}
		if v := Evaluate(ModeEnforce, "1.0.0", "1.1.0", d); !v.Fail {
			t.Errorf("verdict = %+v, want a failure", v)
		}
	})
	t.Run("NotDeclared", func(t *testing.T) {
		t.Parallel()
		d := Compare(fetch(t, FetchOptions{URL: v1 + "/mcp"}), fetch(t, FetchOptions{URL: v2 + "/mcp"}))
		if !d.IsEmpty() {
			t.Errorf("without sampling declared the diff is %+v, want none: the tool is invisible", d)
		}
	})
	t.Run("CapabilitiesChanged", func(t *testing.T) {
		t.Parallel()
		// The previous revision was recorded declaring sampling, the new one
		// is read with the default: "ask" seems gone, but only because the
		// capabilities changed.
		old := fetch(t, FetchOptions{URL: v1 + "/mcp", ClientCapabilities: []string{"sampling", "roots"}})
		d := Compare(old, fetch(t, FetchOptions{URL: v1 + "/mcp"}))
		checkDiff(t, d, nil, nil)
		if d.Capabilities == nil || strings.Join(d.Capabilities.Old, ",") != "roots,sampling" || strings.Join(d.Capabilities.New, ",") != "roots" {
			t.Errorf("capabilities change = %+v, want roots,sampling -> roots", d.Capabilities)
		}
		if got := lines(d.Unjudged); !slices.Equal(got, []string{`tool-removed : tool "ask" was removed`}) {
			t.Errorf("unjudged = %q", got)
		}
		if d.IsEmpty() || d.Needs() != BumpPatch {
			t.Errorf("IsEmpty = %v, Needs = %s; want differences that ask for no bump", d.IsEmpty(), d.Needs())
		}
		v := Evaluate(ModeEnforce, "1.0.0", "1.1.0", d)
		want := "contract: 1.0.0 -> 1.1.0 is a minor bump; the client capabilities declared changed from roots, sampling to roots,\n" +
			"so the contracts are not compared, and this one is recorded for the next revision to be compared with;\n" +
			"differences, not judged (they may come from the capabilities):\n" +
			"  - tool \"ask\" was removed\n"
		if v.Fail || v.Warn || !v.Note || v.Report != want {
			t.Errorf("verdict = %+v, report:\n%s\nwant a note:\n%s", v, v.Report, want)
		}
		if v := Evaluate(ModeOff, "1.0.0", "1.1.0", d); v.Note || v.Report != "" {
			t.Errorf("contract = off: verdict = %+v, want silence", v)
		}
	})
}

// TestCompareRecordsWithoutCapabilities: a contract recorded before tend
// recorded the capabilities was fetched with the go-sdk's default, roots,
// and compares as such.
func TestCompareRecordsWithoutCapabilities(t *testing.T) {
	t.Parallel()
	var old Contract
	if err := json.Unmarshal([]byte(`{"version":"1.0.0","tools":[{"name":"search","input_schema":{}}],"resources":[],"prompts":[]}`), &old); err != nil {
		t.Fatal(err)
	}
	if got := old.Declared(); !slices.Equal(got, []string{"roots"}) {
		t.Errorf("Declared() of an old record = %q, want roots", got)
	}
	same := &Contract{Tools: []Tool{{Name: "search", InputSchema: json.RawMessage(`{}`)}}, ClientCapabilities: []string{"roots"}}
	if d := Compare(&old, same); !d.IsEmpty() || d.Capabilities != nil {
		t.Errorf("an old record against the default = %+v, want no difference", d)
	}
	none := &Contract{Tools: same.Tools, ClientCapabilities: []string{}}
	if d := Compare(&old, none); d.Capabilities == nil || len(d.Capabilities.New) != 0 {
		t.Errorf("an old record against no capabilities = %+v, want a capabilities change", d)
	}
}
