package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/sirupsen/logrus"
)

// Approver is a Backend that records approvals and rejections of planned
// changes, at POST /api/v1/approve and POST /api/v1/reject, and lists them
// at GET /api/v1/approvals.
type Approver interface {
	Decide(ctx context.Context, req DecisionRequest) (any, error)
	Approvals(ctx context.Context, server string, limit int) (any, error)
}

// DecisionRequest is the body of POST /api/v1/approve and /api/v1/reject.
// Revision, when set, is the source revision the person reviewed; By says
// who decides (default: "api" and the client's address); Note is a note
// for an approval and the reason of a rejection (required then).
type DecisionRequest struct {
	Server   string `json:"server"`
	Revision string `json:"revision,omitempty"`
	By       string `json:"by,omitempty"`
	Note     string `json:"note,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Reject   bool   `json:"-"`
}

// RefusedError is returned by Approver.Decide when the decision cannot be
// recorded (no change of that server waits for one, the plan is of another
// revision): the API answers 409 with its text.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// maxDecisionBody bounds the body of a decision.
const maxDecisionBody = 64 << 10

func (s *server) decide(reject bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ap, ok := s.b.(Approver)
		if !ok {
			writeError(w, http.StatusNotFound, "not found")
			return
		}
		if !s.apiGuard(w, r, http.MethodPost) {
			return
		}
		var req DecisionRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, maxDecisionBody+1))
		if err != nil || len(body) > maxDecisionBody {
			writeError(w, http.StatusBadRequest, "body: want a JSON object of at most 64 KiB")
			return
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "body: want a JSON object such as {\"server\": \"search\", \"revision\": \"abc123\", \"by\": \"alice\"}")
			return
		}
		req.Server = strings.TrimSpace(req.Server)
		if req.Server == "" || len(req.Server) > maxServerParam {
			writeError(w, http.StatusBadRequest, "server: the name of the server whose planned change is decided")
			return
		}
		req.Reject = reject
		if reject && req.Reason == "" {
			req.Reason = req.Note
		}
		if reject {
			req.Note = req.Reason
		}
		if strings.TrimSpace(req.By) == "" {
			req.By = "api (" + s.remote(r) + ")"
		}
		ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
		defer cancel()
		v, err := ap.Decide(ctx, req)
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			writeError(w, http.StatusConflict, refused.Msg)
			return
		case err != nil:
			s.backendError(w, r, "decision", err)
			return
		}
		if s.m != nil {
			what := "approved"
			if reject {
				what = "rejected"
			}
			s.m.IncDecision(req.Server, what)
		}
		s.log.WithFields(logrus.Fields{"endpoint": "api", "remote": s.remote(r), "server": req.Server, "reject": reject, "by": req.By}).Info("change decided")
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *server) approvals(w http.ResponseWriter, r *http.Request) {
	ap, ok := s.b.(Approver)
	if !ok {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	s.serveList(w, r, "approvals", ap.Approvals)
}
