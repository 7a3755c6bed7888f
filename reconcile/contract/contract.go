package contract

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// Contract is what one revision of an MCP server exposes to its clients.
type Contract struct {
	// Server is tend's name of the server (FetchOptions.Server), if known.
	Server string `json:"server,omitempty"`
	// Implementation is the name the server gives itself (serverInfo.name).
	Implementation string `json:"implementation,omitempty"`
	// Version is the version the server reports (serverInfo.version).
	Version string `json:"version"`
	// ProtocolVersion is the MCP protocol version the session agreed on.
	ProtocolVersion string `json:"protocol_version"`
	// Instructions are the server's instructions to a model, if any.
	Instructions string `json:"instructions,omitempty"`
	// ClientCapabilities are the client capabilities the fetch declared
	// (sorted): a server may offer some tools, resources or prompts only to
	// clients that declare, say, sampling, so a contract is what clients
	// with these capabilities see. Nil, in a record from before tend
	// recorded them, means DefaultClientCapabilities, which every earlier
	// fetch declared; see Declared. Normalize sets them.
	ClientCapabilities []string `json:"client_capabilities"`

	Tools     []Tool     `json:"tools"`
	Resources []Resource `json:"resources"`
	Prompts   []Prompt   `json:"prompts"`
}

// Tool is one tool of a server.
type Tool struct {
	Name string `json:"name"`
	// Title is the tool's title, or else the title of its annotations.
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// InputSchema is the JSON schema of the tool's arguments, canonical:
	// keys sorted, no insignificant space.
	InputSchema json.RawMessage `json:"input_schema"`
	// OutputSchema is the JSON schema of the tool's structured result, if it
	// declares one (canonical too). Compare does not look at it.
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
}

// Resource is one resource, or one resource template, of a server: exactly
// one of URI and URITemplate is set.
type Resource struct {
	URI         string `json:"uri,omitempty"`
	URITemplate string `json:"uri_template,omitempty"`
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	MIMEType    string `json:"mime_type,omitempty"`
}

// Key is the resource's URI, or its URI template.
func (r Resource) Key() string { return cmp.Or(r.URI, r.URITemplate) }

// IsTemplate reports whether r is a resource template.
func (r Resource) IsTemplate() bool { return r.URI == "" && r.URITemplate != "" }

// Prompt is one prompt of a server.
type Prompt struct {
	Name        string           `json:"name"`
	Title       string           `json:"title,omitempty"`
	Description string           `json:"description,omitempty"`
	Arguments   []PromptArgument `json:"arguments,omitempty"`
}

// PromptArgument is one argument of a prompt.
type PromptArgument struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required"`
}

// Client capabilities a fetch can declare (FetchOptions.ClientCapabilities).
const (
	CapabilityElicitation = "elicitation"
	CapabilityRoots       = "roots"
	CapabilitySampling    = "sampling"
)

// ClientCapabilityNames lists the client capabilities a fetch can declare,
// sorted.
var ClientCapabilityNames = []string{CapabilityElicitation, CapabilityRoots, CapabilitySampling}

// DefaultClientCapabilities are what a fetch declares when its options
// name none (nil): roots, as the go-sdk client declares by default and as
// every contract recorded before tend recorded the capabilities was
// fetched.
var DefaultClientCapabilities = []string{CapabilityRoots}

// Declared returns the client capabilities c was fetched with, sorted:
// c.ClientCapabilities, or DefaultClientCapabilities when that is nil.
func (c *Contract) Declared() []string {
	if c == nil || c.ClientCapabilities == nil {
		return slices.Clone(DefaultClientCapabilities)
	}
	out := slices.Clone(c.ClientCapabilities)
	slices.Sort(out)
	return slices.Compact(out)
}

// Tool returns the tool with the given name, or nil.
func (c *Contract) Tool(name string) *Tool {
	i := slices.IndexFunc(c.Tools, func(t Tool) bool { return t.Name == name })
	if i < 0 {
		return nil
	}
	return &c.Tools[i]
}

// Normalize puts c in its canonical form: lists sorted (and empty rather
// than nil), repeated names dropped (the first is kept), schemas canonical,
// and the client capabilities set (DefaultClientCapabilities when nil).
// Fetch returns normalized contracts; call Normalize on one built by hand
// or decoded from an older record.
func (c *Contract) Normalize() error {
	for i := range c.Tools {
		t := &c.Tools[i]
		in, err := Canonical(t.InputSchema)
		if err != nil {
			return fmt.Errorf("the input schema of tool %q: %w", t.Name, err)
		}
		t.InputSchema = in
		if len(t.OutputSchema) > 0 {
			out, err := Canonical(t.OutputSchema)
			if err != nil {
				return fmt.Errorf("the output schema of tool %q: %w", t.Name, err)
			}
			t.OutputSchema = out
		}
	}
	for i := range c.Prompts {
		p := &c.Prompts[i]
		p.Arguments = sortUnique(p.Arguments, func(a PromptArgument) string { return a.Name })
		if len(p.Arguments) == 0 {
			p.Arguments = nil
		}
	}
	c.Tools = sortUnique(c.Tools, func(t Tool) string { return t.Name })
	c.Resources = sortUnique(c.Resources, Resource.Key)
	c.Prompts = sortUnique(c.Prompts, func(p Prompt) string { return p.Name })
	c.ClientCapabilities = c.Declared()
	return nil
}

// sortUnique sorts s by key, stably, and drops the later of equal keys. It
// never returns nil.
func sortUnique[T any](s []T, key func(T) string) []T {
	out := slices.Clone(s)
	if out == nil {
		out = []T{}
	}
	slices.SortStableFunc(out, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return slices.CompactFunc(out, func(a, b T) bool { return key(a) == key(b) })
}

// Canonical returns the canonical form of a JSON document: object keys
// sorted, no insignificant space, numbers as written, no HTML escaping. An
// empty document is the empty object, {}.
func Canonical(doc []byte) (json.RawMessage, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return json.RawMessage("{}"), nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("not one JSON document")
	}
	return marshalCanonical(v)
}

// marshalCanonical encodes v with sorted keys (encoding/json sorts map
// keys) and without HTML escaping.
func marshalCanonical(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}
