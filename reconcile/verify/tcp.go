package verify

import (
	"context"
	"net"
)

type tcpProber struct {
	port string
}

func (p *tcpProber) Probe(ctx context.Context, t Target) error {
	addr, err := address(t, p.port)
	if err != nil {
		return err
	}
	what := "connect " + addr
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return failed(ctx, what, netError(err))
	}
	return conn.Close()
}
