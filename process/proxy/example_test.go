package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/seqlab/seqlab/process/proxy"
)

// A link in front of an echo server, with 50ms on the way there.
func Example() {
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()

	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	link, _ := proxy.New(proxy.Config{
		Name: "n1->n2", Listener: lis,
		Dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", echo.Addr().String())
		},
	})
	defer link.Close()
	link.Set(proxy.Forward, proxy.Settings{Latency: 50 * time.Millisecond})

	c, _ := net.Dial("tcp", link.Addr().String())
	defer c.Close()
	start := time.Now()
	c.Write([]byte("hi"))
	io.ReadFull(c, make([]byte, 2))
	fmt.Println("delayed:", time.Since(start) >= 50*time.Millisecond)
	// Output: delayed: true
}
