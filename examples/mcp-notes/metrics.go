package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// metrics holds the counters that /metrics shows, written out by hand in the
// Prometheus text exposition format (version 0.0.4).
type metrics struct {
	start    time.Time
	notes    func() int   // the current number of notes
	inFlight func() int64 // requests being served now

	mu         sync.Mutex
	requests   map[requestKey]uint64
	toolCalls  map[string]uint64
	toolErrors map[string]uint64
}

type requestKey struct {
	path string
	code int
}

func newMetrics(start time.Time, notes func() int, inFlight func() int64) *metrics {
	m := &metrics{
		start:      start,
		notes:      notes,
		inFlight:   inFlight,
		requests:   map[requestKey]uint64{},
		toolCalls:  map[string]uint64{},
		toolErrors: map[string]uint64{},
	}
	for _, t := range toolNames { // every tool shows, at 0, from the start
		m.toolCalls[t] = 0
		m.toolErrors[t] = 0
	}
	return m
}

// metricsPath bounds the path label to the served endpoints.
func metricsPath(p string) string {
	switch p {
	case "/mcp", "/sse", "/health", "/metrics", "/work":
		return p
	}
	return "other"
}

func (m *metrics) request(path string, code int) {
	m.mu.Lock()
	m.requests[requestKey{metricsPath(path), code}]++
	m.mu.Unlock()
}

func (m *metrics) toolCall(name string) {
	m.mu.Lock()
	m.toolCalls[name]++
	m.mu.Unlock()
}

func (m *metrics) toolError(name string) {
	m.mu.Lock()
	m.toolErrors[name]++
	m.mu.Unlock()
}

// write writes every metric in the text exposition format.
func (m *metrics) write(w io.Writer) error {
	m.mu.Lock()
	requests := maps.Clone(m.requests)
	toolCalls := maps.Clone(m.toolCalls)
	toolErrors := maps.Clone(m.toolErrors)
	m.mu.Unlock()

	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}

	family("mcp_notes_build_info", "gauge", "Build information of the running mcp-notes; always 1.")
	fmt.Fprintf(&b, "mcp_notes_build_info{version=%s} 1\n", labelValue(version))

	family("mcp_notes_notes", "gauge", "Number of notes in the store.")
	fmt.Fprintf(&b, "mcp_notes_notes %d\n", m.notes())

	family("mcp_notes_http_requests_total", "counter", "HTTP requests served, by path and status code.")
	keys := slices.SortedFunc(maps.Keys(requests), func(a, b requestKey) int {
		return cmp.Or(strings.Compare(a.path, b.path), cmp.Compare(a.code, b.code))
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "mcp_notes_http_requests_total{path=%s,code=\"%d\"} %d\n", labelValue(k.path), k.code, requests[k])
	}

	family("mcp_notes_http_requests_in_flight", "gauge", "HTTP requests being served, not counting open MCP event streams.")
	fmt.Fprintf(&b, "mcp_notes_http_requests_in_flight %d\n", m.inFlight())

	family("mcp_notes_tool_calls_total", "counter", "MCP tool calls, by tool.")
	for _, t := range slices.Sorted(maps.Keys(toolCalls)) {
		fmt.Fprintf(&b, "mcp_notes_tool_calls_total{tool=%s} %d\n", labelValue(t), toolCalls[t])
	}

	family("mcp_notes_tool_errors_total", "counter", "MCP tool calls that ended in a tool error, by tool.")
	for _, t := range slices.Sorted(maps.Keys(toolErrors)) {
		fmt.Fprintf(&b, "mcp_notes_tool_errors_total{tool=%s} %d\n", labelValue(t), toolErrors[t])
	}

	family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.")
	fmt.Fprintf(&b, "process_start_time_seconds %s\n",
		strconv.FormatFloat(float64(m.start.UnixMilli())/1000, 'f', -1, 64))

	_, err := io.WriteString(w, b.String())
	return err
}

// labelValue quotes a label value as the exposition format wants: with
// backslash, double quote and newline escaped.
func labelValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}
