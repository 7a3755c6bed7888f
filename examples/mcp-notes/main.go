// Command mcp-notes is a small MCP (Model Context Protocol) server that keeps
// notes in a JSON file. It serves the MCP streamable HTTP transport at /mcp
// (and the older HTTP+SSE transport at /sse), a health check at /health,
// Prometheus metrics at /metrics and, for load tests, /work, which costs
// what --burn-per-request says.
//
// It is the demo and test workload of tend: its version, an optional fault
// and the tool set it serves are set at build time, so that a "bad release"
// or a release that changes the tools is a real, different binary:
//
//	go build -ldflags "-X main.version=1.2.3" -o bin/mcp-notes-1.2.3 ./examples/mcp-notes
//	go build -ldflags "-X main.version=1.2.4 -X main.fault=unhealthy" -o bin/mcp-notes-1.2.4 ./examples/mcp-notes
//	go build -ldflags "-X main.version=1.3.0 -X main.toolset=v2-additive" -o bin/mcp-notes-1.3.0 ./examples/mcp-notes
//
// See README.md in this folder.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Set at build time with
// -ldflags "-X main.version=... -X main.fault=... -X main.toolset=...".
var (
	version = "0.0.0-dev"
	fault   = ""
	toolset = ""
)

// The faults a build can carry; see README.md.
const (
	faultNone      = ""
	faultCrash     = "crash"
	faultUnhealthy = "unhealthy"
	faultNoMCP     = "no-mcp"
)

const (
	exitOK        = 0
	exitFailure   = 1
	exitBadConfig = 2

	crashDelay      = 300 * time.Millisecond
	shutdownTimeout = 5 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// stdin is what --stdio reads MCP from.
var stdin io.Reader = os.Stdin

// nopWriteCloser does not close the writer it wraps (stdout is not the
// session's to close).
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// run is the whole program; it returns the process exit code.
func run(args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	fl, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitBadConfig // the flag package has already said why
	}
	if fl.showVersion {
		fmt.Fprintln(stdout, version)
		return exitOK
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))

	switch fault {
	case faultNone, faultCrash, faultUnhealthy, faultNoMCP:
	default:
		logger.Error("this binary was built with an unknown fault; want one of crash, unhealthy, no-mcp",
			"fault", fault)
		return exitBadConfig
	}
	if _, ok := toolsets[toolset]; !ok {
		logger.Error("this binary was built with an unknown tool set; want v2-additive, v2-breaking or none (the default)",
			"toolset", toolset)
		return exitBadConfig
	}

	cfg, err := loadConfig(fl, lookupEnv)
	if err != nil {
		// Plain text rather than a log record: this is for a person to read.
		fmt.Fprintf(stderr, "mcp-notes: bad configuration: %v\n", err)
		return exitBadConfig
	}

	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	store, err := openStore(cfg.DataDir)
	if err != nil {
		logger.Error("cannot open the notes store", "data_dir", cfg.DataDir, "err", err)
		return exitFailure
	}

	if fl.stdio {
		// One client, on stdin and stdout; the log stays on stderr.
		if fault == faultCrash || fault == faultNoMCP {
			logger.Error("fault: no MCP over stdio", "fault", fault, "version", version)
			return exitFailure
		}
		logger.Info("mcp-notes serving MCP over stdio", "version", version, "data_dir", cfg.DataDir)
		if err := newMCPServer(store, newMetrics(time.Now(), store.Count, func() int64 { return 0 }), cfg.SamplingTool).Run(context.Background(),
			&mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}); err != nil && !errors.Is(err, io.EOF) {
			logger.Error("the stdio session ended", "err", err)
			return exitFailure
		}
		return exitOK
	}

	ln, err := net.Listen("tcp", cfg.addr())
	if err != nil {
		logger.Error("cannot listen", "addr", cfg.addr(), "err", err)
		return exitFailure
	}

	a := newApp(cfg, store, logger)
	a.reloader = &reloader{load: func() (Config, error) { return loadConfig(fl, lookupEnv) }}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// During a shutdown, once the in-flight requests are done, end the MCP
	// sessions: that closes their long-lived SSE streams, which would
	// otherwise keep Shutdown waiting until its deadline.
	srv.RegisterOnShutdown(func() { a.closeSessionsWhenIdle(shutdownTimeout - 500*time.Millisecond) })

	startAttrs := []any{
		"version", version,
		"addr", ln.Addr().String(),
		"data_dir", cfg.DataDir,
		"notes", store.Count(),
		"workers", cfg.Workers,
		"rate_limiting", cfg.RateLimiting.String(),
	}
	if fault != faultNone {
		startAttrs = append(startAttrs, "fault", fault)
	}
	if toolset != toolsetDefault {
		startAttrs = append(startAttrs, "toolset", toolset)
	}
	if cfg.SamplingTool {
		startAttrs = append(startAttrs, "sampling_tool", summarizeTool)
	}
	if cfg.BurnPerRequest > 0 {
		startAttrs = append(startAttrs, "burn_per_request", cfg.BurnPerRequest)
	}
	logger.Info("mcp-notes starting", startAttrs...)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	// SIGHUP reloads the config file (see reloader).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = a.reload()
		}
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var crash <-chan time.Time
	if fault == faultCrash {
		crash = time.After(crashDelay)
	}

	select {
	case err := <-serveErr:
		logger.Error("server failed", "err", err)
		return exitFailure
	case <-crash:
		logger.Error("fault=crash: simulated crash shortly after start", "version", version)
		return exitFailure
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way

	logger.Info("shutting down: finishing in-flight requests", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("graceful shutdown did not finish in time; closing the remaining connections", "err", err)
		_ = srv.Close()
	}
	logger.Info("stopped", "version", version)
	return exitOK
}

// flags holds the command line.
type flags struct {
	configPath     string
	port           int
	host           string
	dataDir        string
	showVersion    bool
	stdio          bool
	burnPerRequest time.Duration
	samplingTool   bool
	set            map[string]bool // the flags given on the command line
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	fs := flag.NewFlagSet("mcp-notes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fl := &flags{set: map[string]bool{}}
	fs.StringVar(&fl.configPath, "config", "", "path of a YAML config file (optional)")
	fs.IntVar(&fl.port, "port", defaultPort, "TCP port to listen on; overrides $PORT and the config file")
	fs.StringVar(&fl.host, "host", defaultHost, "address to listen on; overrides the config file")
	fs.StringVar(&fl.dataDir, "data-dir", defaultDataDir, "directory of the notes file; overrides $NOTES_DATA_DIR and the config file")
	fs.BoolVar(&fl.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&fl.stdio, "stdio", false, "serve MCP on standard input and output instead of HTTP, until the input ends")
	fs.DurationVar(&fl.burnPerRequest, "burn-per-request", 0, "CPU time every request to /mcp, /sse and /work burns before it is served (a load-test aid; at most 1s)")
	fs.BoolVar(&fl.samplingTool, "sampling-tool", false, "also serve the tool "+summarizeTool+", offered only to clients that declare the sampling capability")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mcp-notes [--config FILE] [--host HOST] [--port PORT] [--data-dir DIR]\n"+
			"       mcp-notes --version\n\n"+
			"An MCP server over a notes store, at http://HOST:PORT/mcp (streamable HTTP)\n"+
			"and http://HOST:PORT/sse (the older HTTP+SSE transport).\n"+
			"Precedence: flags > environment (PORT, NOTES_DATA_DIR) > config file > defaults.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcp-notes: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { fl.set[f.Name] = true })
	return fl, nil
}
