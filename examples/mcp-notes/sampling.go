package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// summarizeTool is the tool that --sampling-tool adds: it asks the
// client's own model, through MCP sampling, for a summary of the notes. A
// client that does not declare the sampling capability cannot answer that
// request, so the tool is offered only to clients that declare it: it is
// left out of their tools/list, and a call from another client is a tool
// error. This is how real servers offer such tools, and what tend's
// contract_capabilities is about (docs/language.md).
const summarizeTool = "summarize_with_model"

// summaryRequest is the id of summarize_with_model's sampling request.
const summaryRequest = "summary"

// summarizeInput is summarize_with_model's input.
type summarizeInput struct {
	Tag string `json:"tag,omitempty" jsonschema:"if set, summarize only the notes with this tag (case-insensitive)"`
}

// summarizeOutput is summarize_with_model's output.
type summarizeOutput struct {
	Summary string `json:"summary" jsonschema:"the summary the client's model wrote"`
	Count   int    `json:"count" jsonschema:"how many notes were summarized"`
}

// addSamplingTool adds summarize_with_model to s, offered only to clients
// that declare sampling.
func addSamplingTool(s *mcp.Server, store *Store) {
	no := false
	mcp.AddTool(s, &mcp.Tool{
		Name: summarizeTool,
		Description: "Ask your own model (MCP sampling) for a short summary of the notes, or of the notes with one tag. " +
			"Offered only to clients that declare the sampling capability.",
		Annotations: &mcp.ToolAnnotations{Title: "Summarize with your model", ReadOnlyHint: true, OpenWorldHint: &no},
	}, func(ctx context.Context, req *mcp.CallToolRequest, in summarizeInput) (*mcp.CallToolResult, summarizeOutput, error) {
		if !declaresSampling(req.Session) {
			return nil, summarizeOutput{}, errors.New(summarizeTool + " needs a client that declares the sampling capability")
		}
		ns := store.List(in.Tag)
		b, err := json.MarshalIndent(ns, "", "  ")
		if err != nil {
			return nil, summarizeOutput{}, err
		}
		// Ask by a multi round-trip request (SEP-2322): the SDK sends it to
		// clients of older protocol versions as a sampling/createMessage
		// request, and calls this handler again with the answer.
		if ans, ok := req.Params.InputResponses[summaryRequest]; ok {
			summary := sampledText(ans)
			if summary == "" {
				return nil, summarizeOutput{}, errors.New("the client's model answered without text")
			}
			return nil, summarizeOutput{Summary: summary, Count: len(ns)}, nil
		}
		ask := &mcp.TextContent{Text: fmt.Sprintf("Summarize these %d notes in a few bullet points:\n\n%s", len(ns), b)}
		//lint:ignore SA1019 sampling is what this tool shows
		msgs := []*mcp.SamplingMessage{{Role: "user", Content: ask}}
		//lint:ignore SA1019 sampling is what this tool shows
		params := &mcp.CreateMessageParams{MaxTokens: 400, Messages: msgs}
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{summaryRequest: params}}, summarizeOutput{}, nil
	})
	s.AddReceivingMiddleware(hideSamplingTools)
}

// sampledText is the text of the client's answer to a sampling request,
// or "".
func sampledText(ans mcp.InputResponse) string {
	var content []mcp.Content
	switch r := ans.(type) {
	case *mcp.CreateMessageResult: //lint:ignore SA1019 sampling is what this tool shows
		content = []mcp.Content{r.Content}
	case *mcp.CreateMessageWithToolsResult: //lint:ignore SA1019 sampling is what this tool shows
		content = r.Content
	}
	var out []string
	for _, c := range content {
		if t, ok := c.(*mcp.TextContent); ok {
			out = append(out, t.Text)
		}
	}
	return strings.Join(out, "\n")
}

// declaresSampling reports whether the client of ss declared the sampling
// capability when it initialized the session.
func declaresSampling(ss *mcp.ServerSession) bool {
	if ss == nil {
		return false
	}
	p := ss.InitializeParams()
	//lint:ignore SA1019 sampling is what this tool shows
	return p != nil && p.Capabilities != nil && p.Capabilities.Sampling != nil
}

// hideSamplingTools is a receiving middleware that leaves summarize_with_model
// out of the tools/list answers to clients that do not declare sampling.
func hideSamplingTools(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		lr, ok := req.(*mcp.ListToolsRequest)
		if method != "tools/list" || err != nil || !ok || declaresSampling(lr.Session) {
			return res, err
		}
		if tl, ok := res.(*mcp.ListToolsResult); ok && tl != nil {
			out := *tl
			out.Tools = slices.DeleteFunc(slices.Clone(tl.Tools), func(t *mcp.Tool) bool { return t.Name == summarizeTool })
			return &out, nil
		}
		return res, err
	}
}
