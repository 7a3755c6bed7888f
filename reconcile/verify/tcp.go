package verify

import (
	"context"
	"fmt"
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
		err = failed(ctx, what, netError(err))
		if t.Route != nil {
			err = fmt.Errorf("%w (a tcp check goes to the replica's address itself; only http and mcp checks go through the provider's proxy)", err)
		}
		return err
	}
	return conn.Close()
}
